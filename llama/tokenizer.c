/* tokenizer.c - the "llama" (SentencePiece-style, by scores) and "gpt2"
 * (byte-level, by merge rank) BPE tokenizers of tokenizer.h.
 *
 * Both models share one merge loop (merge_symbols): a piece of text
 * becomes a linked list of symbols, every adjacent pair that may merge
 * goes into a binary heap keyed by its priority (llama: the score of the
 * merged token, higher first; gpt2: the rank of the merge, lower first;
 * ties: leftmost first), and the loop pops the best pair, skips it if a
 * side has changed since it was pushed, merges, and pushes the two new
 * pairs around the result.  Each merge pushes at most two pairs, so a
 * piece of n characters takes O(n log n) where rescanning all pairs after
 * each merge would take O(n^2).  The result is the same as the rescan's:
 * the heap always holds every current pair, and stale ones are skipped.
 *
 * Vocabulary and merges are open-addressing hash tables over byte strings
 * (XXH3 through tgc_hash64).  A merge "a b" is stored as the string "ab"
 * with the split point strlen("a") as part of its key, so the pair of two
 * adjacent symbols is looked up in place, without building "a b".
 *
 * The GPT-2 pre-tokenizer is a PCRE2 pattern compiled once (JIT-compiled
 * when PCRE2 can) and matched with PCRE2_MATCH_INVALID_UTF: matches never
 * cover invalid UTF-8, and the bytes between two matches become a piece of
 * their own, so every byte of the input reaches the BPE and decodes back.
 *
 * What each token decodes to is computed once in tgc_tok_new, so decoding
 * (tokenizer_decode.c) only copies bytes.  The structures both files use
 * are in tokenizer_internal.h.
 */
#include "tgc_internal.h"

#include <limits.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"
#include "tokenizer_internal.h"

#ifndef PCRE2_MATCH_INVALID_UTF
#error "the tokenizer needs PCRE2 10.34 or newer (PCRE2_MATCH_INVALID_UTF)"
#endif

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's stand-in for a space. */
#define SPM_SPACE "\xe2\x96\x81"

/* LLaMA 3's split pattern (tokenizer.json's pre_tokenizer) and GPT-2's. */
static const char LLAMA3_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* tokenizer.ggml.pre values.  ignore_merges: a piece that is a token as a
 * whole becomes that token without merging (LLaMA 3's tokenizer.json sets
 * it; it can give a different result from merging). */
static const struct {
  const char *name;
  const char *pattern;
  bool ignore_merges;
} pretokenizers[] = {
    {"default", LLAMA3_PATTERN, true},   {"llama-bpe", LLAMA3_PATTERN, true},
    {"llama3", LLAMA3_PATTERN, true},    {"llama-v3", LLAMA3_PATTERN, true},
    {"smaug-bpe", LLAMA3_PATTERN, true}, {"gpt2", GPT2_PATTERN, false},
    {"gpt-2", GPT2_PATTERN, false},
};

/* Tokens that end a generation besides EOS, where a vocabulary has them. */
static const char *const eog_names[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};

/* ---- string tables ----------------------------------------------------- */

/* strtab: see tokenizer_internal.h */

static void strtab_init(strtab *t, int n) {
  t->off = tgc_xmalloc(((size_t)n + 1) * sizeof *t->off);
  t->tag = tgc_xmalloc(((size_t)n + 1) * sizeof *t->tag);
  t->off[0] = 0;
}

/* Appends a string; the caller has sized the table for it (strtab_init). */
static void strtab_add(strtab *t, const char *s, size_t n, uint32_t tag) {
  if (t->size + n + 1 > t->bytes_cap) {
    t->bytes_cap = 2 * t->bytes_cap > t->size + n + 1 ? 2 * t->bytes_cap : t->size + n + 1024;
    t->bytes = tgc_xrealloc(t->bytes, t->bytes_cap);
  }
  if (n) memcpy(t->bytes + t->size, s, n);
  t->bytes[t->size + n] = '\0';
  t->size += n + 1;
  t->tag[t->n] = tag;
  t->off[++t->n] = t->size;
}

const char *tgc_tok_strtab_get(const strtab *t, int i, size_t *n) {
  *n = t->off[i + 1] - t->off[i] - 1;
  return t->bytes + t->off[i];
}

static bool strtab_eq(const strtab *t, int i, const char *s, size_t n, uint32_t tag) {
  size_t m;
  const char *p = tgc_tok_strtab_get(t, i, &m);
  return m == n && t->tag[i] == tag && !memcmp(p, s, n);
}

/* Builds the hash table.  Of equal keys the first is kept, or with
 * last_wins the last (llama.cpp keeps the last of duplicate tokens and the
 * first of duplicate merges). */
static void strtab_index(strtab *t, bool last_wins) {
  size_t cap = 16;
  while (cap < 2 * (size_t)t->n) cap *= 2;
  t->mask = cap - 1;
  t->slot = tgc_xmalloc(cap * sizeof *t->slot);
  memset(t->slot, 0xff, cap * sizeof *t->slot);
  for (int i = 0; i < t->n; i++) {
    size_t n;
    const char *s = tgc_tok_strtab_get(t, i, &n);
    size_t h = (size_t)tgc_hash64(s, n, t->tag[i]) & t->mask;
    while (t->slot[h] >= 0 && !strtab_eq(t, t->slot[h], s, n, t->tag[i])) h = (h + 1) & t->mask;
    if (t->slot[h] < 0 || last_wins) t->slot[h] = i;
  }
}

int32_t tgc_tok_strtab_find(const strtab *t, const char *s, size_t n, uint32_t tag) {
  size_t h = (size_t)tgc_hash64(s, n, tag) & t->mask;
  for (; t->slot[h] >= 0; h = (h + 1) & t->mask)
    if (strtab_eq(t, t->slot[h], s, n, tag)) return t->slot[h];
  return -1;
}

static void strtab_free(strtab *t) {
  free(t->bytes);
  free(t->off);
  free(t->tag);
  free(t->slot);
}

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the character at s[0..n): 1 to 4, or 1 for a byte that does
 * not start a complete sequence (it then stands alone). */
static int utf8_len(const unsigned char *s, size_t n) {
  int len = s[0] < 0x80 ? 1 : s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
  if (len == 0 || (size_t)len > n) return 1;
  for (int i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80) return 1;
  return len;
}

/* The code point of a character of utf8_len len (a lone byte: its value). */
static uint32_t utf8_decode(const unsigned char *s, int len) {
  if (len == 1) return s[0];
  uint32_t cp = s[0] & (0x7f >> len);
  for (int i = 1; i < len; i++) cp = cp << 6 | (s[i] & 0x3f);
  return cp;
}

/* Writes a code point below 0x800 (all GPT-2's mapping needs). */
static int utf8_put2(char *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  out[0] = (char)(0xc0 | cp >> 6);
  out[1] = (char)(0x80 | (cp & 0x3f));
  return 2;
}

/* ---- the tokenizer ----------------------------------------------------- */

/* struct tgc_tokenizer: see tokenizer_internal.h */

static bool is_mergeable(int type) {
  return type == TGC_TOK_NORMAL || type == TGC_TOK_UNDEFINED || type == TGC_TOK_USER_DEFINED;
}

/* The byte of a token named <0xNN> (hex digits either case), or -1. */
static int byte_token_value(const char *s, size_t n) {
  if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; i++) {
    int c = s[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
 * other 68 (controls, space, DEL, NBSP, soft hyphen) to U+0100.. in order. */
static void init_byte_map(tgc_tokenizer *t) {
  int next = 256;
  memset(t->cp_byte, 0xff, sizeof t->cp_byte);
  for (int b = 0; b < 256; b++) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    int cp = printable ? b : next++;
    t->byte_cp[b] = (uint16_t)cp;
    t->cp_byte[cp] = (int16_t)b;
  }
}

static size_t token_len(const tgc_tok_config *c, int i) {
  return c->token_lens ? c->token_lens[i] : strlen(c->tokens[i]);
}

static tgc_status check_config(const tgc_tok_config *c) {
  const char *fn = "tgc_tok_new";
  if (!c->model || (strcmp(c->model, "llama") && strcmp(c->model, "gpt2")))
    return tgc_set_error(TGC_ERR_ARG, "%s: unknown tokenizer model \"%s\" (expected \"llama\" or \"gpt2\")",
                         fn, c->model ? c->model : "(null)");
  if (c->n_vocab <= 0 || !c->tokens)
    return tgc_set_error(TGC_ERR_ARG, "%s: no tokens (n_vocab %d, tokens %p)", fn, c->n_vocab,
                         (const void *)c->tokens);
  for (int i = 0; i < c->n_vocab; i++) {
    if (!c->tokens[i]) return tgc_set_error(TGC_ERR_ARG, "%s: token %d is NULL", fn, i);
    if (c->types && (c->types[i] < 0 || c->types[i] > TGC_TOK_BYTE))
      return tgc_set_error(TGC_ERR_ARG, "%s: token %d has type %d (expected 0..6)", fn, i, (int)c->types[i]);
    if (token_len(c, i) > INT_MAX / 4) return tgc_set_error(TGC_ERR_ARG, "%s: token %d is too long", fn, i);
  }
  if (c->bos < -1 || c->bos >= c->n_vocab || c->eos < -1 || c->eos >= c->n_vocab)
    return tgc_set_error(TGC_ERR_ARG, "%s: bos %d or eos %d out of range [-1, %d)", fn, (int)c->bos,
                         (int)c->eos, c->n_vocab);
  if (c->add_bos && c->bos < 0) return tgc_set_error(TGC_ERR_ARG, "%s: add_bos is set but bos is -1", fn);
  if (c->add_eos && c->eos < 0) return tgc_set_error(TGC_ERR_ARG, "%s: add_eos is set but eos is -1", fn);
  if (c->n_merges < 0 || (c->n_merges > 0 && !c->merges))
    return tgc_set_error(TGC_ERR_ARG, "%s: %d merges, merges %p", fn, c->n_merges, (const void *)c->merges);
  return TGC_OK;
}

/* The type of token i: as given, or guessed when the config has no types. */
static int config_type(const tgc_tok_config *c, int i) {
  if (c->types) return c->types[i];
  if (i == c->bos || i == c->eos) return TGC_TOK_CONTROL;
  if (!strcmp(c->model, "llama") && byte_token_value(c->tokens[i], token_len(c, i)) >= 0) return TGC_TOK_BYTE;
  return TGC_TOK_NORMAL;
}

/* The bytes token id decodes to, into out (room for its text's length:
 * no token decodes to more bytes than its text has). */
static size_t decode_token(const tgc_tokenizer *t, int id, char *out) {
  size_t n, m = 0;
  const char *s = tgc_tok_strtab_get(&t->vocab, id, &n);
  int type = t->type[id];
  if (!is_text(type)) return 0;
  if (type == TGC_TOK_BYTE) {
    out[0] = (char)byte_token_value(s, n);
    return 1;
  }
  if (t->model == MODEL_GPT2 && type == TGC_TOK_USER_DEFINED) {
    memcpy(out, s, n); /* added tokens are stored as plain text */
    return n;
  }
  for (size_t i = 0; i < n;) {
    int len = utf8_len((const unsigned char *)s + i, n - i);
    uint32_t cp = utf8_decode((const unsigned char *)s + i, len);
    if (t->model == MODEL_LLAMA && len == 3 && !memcmp(s + i, SPM_SPACE, 3))
      out[m++] = ' ';
    else if (t->model == MODEL_GPT2 && cp < 324 && t->cp_byte[cp] >= 0)
      out[m++] = (char)t->cp_byte[cp];
    else
      for (int k = 0; k < len; k++) out[m++] = s[i + k];
    i += (size_t)len;
  }
  return m;
}

static tgc_status load_vocab(tgc_tokenizer *t, const tgc_tok_config *c) {
  t->n_vocab = c->n_vocab;
  t->type = tgc_xmalloc((size_t)c->n_vocab);
  t->score = tgc_xcalloc((size_t)c->n_vocab, sizeof *t->score);
  t->unk = -1;
  memset(t->byte_id, 0xff, sizeof t->byte_id);
  strtab_init(&t->vocab, c->n_vocab);
  for (int i = 0; i < c->n_vocab; i++) {
    size_t n = token_len(c, i);
    strtab_add(&t->vocab, c->tokens[i], n, 0);
    t->type[i] = (uint8_t)config_type(c, i);
    if (c->scores) t->score[i] = c->scores[i];
    if (t->type[i] == TGC_TOK_UNKNOWN && t->unk < 0) t->unk = i;
    if (t->type[i] == TGC_TOK_BYTE) {
      int b = byte_token_value(c->tokens[i], n);
      if (b < 0)
        return tgc_set_error(TGC_ERR_ARG, "tgc_tok_new: token %d (\"%.*s\") has the byte type but is not named <0xNN>",
                             i, (int)(n > 32 ? 32 : n), c->tokens[i]);
      if (t->byte_id[b] < 0) t->byte_id[b] = i;
    }
  }
  strtab_index(&t->vocab, true);
  char *scratch = tgc_xmalloc(t->vocab.size + 1);
  strtab_init(&t->pieces, c->n_vocab);
  for (int i = 0; i < c->n_vocab; i++) strtab_add(&t->pieces, scratch, decode_token(t, i, scratch), 0);
  free(scratch);
  return TGC_OK;
}

/* A merge "a b" becomes the string "ab" tagged strlen("a"); its rank is
 * its index.  The split is at the first space after the first byte, as in
 * llama.cpp (GPT-2 tokens hold no spaces: space maps to "Ġ"). */
static tgc_status load_merges(tgc_tokenizer *t, const tgc_tok_config *c) {
  strtab_init(&t->merges, c->n_merges);
  for (int i = 0; i < c->n_merges; i++) {
    const char *m = c->merges[i];
    const char *sp = m && m[0] ? strchr(m + 1, ' ') : NULL;
    if (!sp || !sp[1])
      return tgc_set_error(TGC_ERR_ARG, "tgc_tok_new: merge %d (\"%.40s\") is not two tokens separated by a space", i,
                           m ? m : "(null)");
    size_t a = (size_t)(sp - m), b = strlen(sp + 1);
    char *ab = tgc_xmalloc(a + b);
    memcpy(ab, m, a);
    memcpy(ab + a, sp + 1, b);
    strtab_add(&t->merges, ab, a + b, (uint32_t)a);
    free(ab);
  }
  strtab_index(&t->merges, false);
  return TGC_OK;
}

static tgc_status load_pretokenizer(tgc_tokenizer *t, const char *pre) {
  const char *name = pre ? pre : "default";
  int k = 0, n = (int)(sizeof pretokenizers / sizeof pretokenizers[0]);
  while (k < n && strcmp(pretokenizers[k].name, name)) k++;
  if (k == n)
    return tgc_set_error(TGC_ERR_ARG, "tgc_tok_new: unknown pre-tokenizer \"%s\" (expected \"llama-bpe\", \"llama3\", "
                         "\"llama-v3\", \"smaug-bpe\", \"gpt2\" or \"default\")", name);
  int err;
  PCRE2_SIZE at;
  t->re = pcre2_compile((PCRE2_SPTR)pretokenizers[k].pattern, PCRE2_ZERO_TERMINATED,
                        PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &at, NULL);
  if (!t->re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "tgc_tok_new: PCRE2 cannot compile the \"%s\" pattern (at %zu): %s",
                         name, (size_t)at, (const char *)msg);
  }
  /* Without JIT (not built in, or no executable memory) pcre2_match
   * interprets the pattern: slower, same pieces. */
  (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
  t->ignore_merges = pretokenizers[k].ignore_merges;
  return TGC_OK;
}

typedef struct special_key {
  unsigned char first;
  size_t len;
  int32_t id;
} special_key;

static int special_cmp(const void *pa, const void *pb) {
  const special_key *a = pa, *b = pb;
  if (a->first != b->first) return a->first < b->first ? -1 : 1;
  if (a->len != b->len) return a->len > b->len ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

/* The tokens matched literally in the input, bucketed by first byte. */
static void find_specials(tgc_tokenizer *t) {
  special_key *keys = tgc_xmalloc((size_t)t->n_vocab * sizeof *keys);
  int n = 0;
  for (int i = 0; i < t->n_vocab; i++) {
    size_t len;
    const char *s = tgc_tok_strtab_get(&t->vocab, i, &len);
    int type = t->type[i];
    if (len && (type == TGC_TOK_CONTROL || type == TGC_TOK_UNKNOWN || type == TGC_TOK_USER_DEFINED))
      keys[n++] = (special_key){(unsigned char)s[0], len, i};
  }
  qsort(keys, (size_t)n, sizeof *keys, special_cmp);
  t->special = tgc_xmalloc(((size_t)n + 1) * sizeof *t->special);
  t->n_special = n;
  for (int b = 0, k = 0; b <= 256; b++) {
    while (k < n && keys[k].first < b) k++;
    t->special_at[b] = k;
  }
  for (int k = 0; k < n; k++) t->special[k] = keys[k].id;
  free(keys);
}

static void find_eog(tgc_tokenizer *t) {
  if (t->eos >= 0) t->eog[t->n_eog++] = t->eos;
  for (size_t k = 0; k < sizeof eog_names / sizeof eog_names[0]; k++) {
    int32_t id = tgc_tok_strtab_find(&t->vocab, eog_names[k], strlen(eog_names[k]), 0);
    if (id >= 0 && id != t->eos) t->eog[t->n_eog++] = id;
  }
}

tgc_tokenizer *tgc_tok_new(const tgc_tok_config *cfg) {
  if (!cfg) return tgc_fail(TGC_ERR_ARG, "tgc_tok_new: config is NULL");
  if (check_config(cfg) != TGC_OK) return NULL;
  tgc_tokenizer *t = tgc_xcalloc(1, sizeof *t);
  t->model = strcmp(cfg->model, "llama") ? MODEL_GPT2 : MODEL_LLAMA;
  t->bos = cfg->bos;
  t->eos = cfg->eos;
  t->add_bos = cfg->add_bos;
  t->add_eos = cfg->add_eos;
  t->add_space_prefix = t->model == MODEL_LLAMA && cfg->add_space_prefix;
  init_byte_map(t);
  tgc_status st = load_vocab(t, cfg);
  if (st == TGC_OK && t->model == MODEL_GPT2) st = load_merges(t, cfg);
  if (st == TGC_OK && t->model == MODEL_GPT2) st = load_pretokenizer(t, cfg->pre);
  if (st != TGC_OK) {
    tgc_tok_free(t);
    return NULL;
  }
  find_specials(t);
  find_eog(t);
  return t;
}

void tgc_tok_free(tgc_tokenizer *t) {
  if (!t) return;
  strtab_free(&t->vocab);
  strtab_free(&t->pieces);
  strtab_free(&t->merges);
  free(t->type);
  free(t->score);
  free(t->special);
  pcre2_code_free(t->re);
  free(t);
}

/* ---- merging ----------------------------------------------------------- */

/* A symbol: work.buf[start .. start + n), linked to its neighbours; n is 0
 * once merged into its left neighbour. */
typedef struct sym {
  int start, n, prev, next;
} sym;

/* A possible merge of symbol left with its next, pushed when the two were
 * size bytes together. */
typedef struct cand {
  double prio; /* higher first */
  int left, size;
} cand;

/* Scratch space of one encode call. */
typedef struct work {
  char *buf;             /* the text being merged: escaped (llama) or mapped (gpt2) */
  size_t buf_cap;
  sym *syms;
  size_t syms_cap;
  cand *heap;
  size_t n_heap, heap_cap;
  int32_t *ids;          /* the output */
  size_t n_ids, ids_cap;
  tgc_tok_span *spans;   /* gpt2: pre-tokenizer pieces */
  size_t n_spans, spans_cap;
  pcre2_match_data *md;
} work;

/* p, grown to hold at least need elements of elem bytes. */
static void *reserve(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  *cap = c;
  return tgc_xrealloc(p, c * elem);
}

static void push_id(work *w, int32_t id) {
  w->ids = reserve(w->ids, &w->ids_cap, w->n_ids + 1, sizeof *w->ids);
  w->ids[w->n_ids++] = id;
}

static void work_free(work *w) {
  free(w->buf);
  free(w->syms);
  free(w->heap);
  free(w->ids);
  free(w->spans);
  pcre2_match_data_free(w->md);
}

static bool cand_before(const cand *a, const cand *b) {
  return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static void heap_push(work *w, cand c) {
  w->heap = reserve(w->heap, &w->heap_cap, w->n_heap + 1, sizeof *w->heap);
  size_t i = w->n_heap++;
  for (; i > 0 && cand_before(&c, &w->heap[(i - 1) / 2]); i = (i - 1) / 2) w->heap[i] = w->heap[(i - 1) / 2];
  w->heap[i] = c;
}

static cand heap_pop(work *w) {
  cand top = w->heap[0], last = w->heap[--w->n_heap];
  size_t i = 0, n = w->n_heap;
  for (;;) {
    size_t k = 2 * i + 1;
    if (k >= n) break;
    if (k + 1 < n && cand_before(&w->heap[k + 1], &w->heap[k])) k++;
    if (!cand_before(&w->heap[k], &last)) break;
    w->heap[i] = w->heap[k];
    i = k;
  }
  if (n) w->heap[i] = last;
  return top;
}

/* The token s[0..n) stands for when BPE may produce it, or -1. */
static int32_t find_mergeable(const tgc_tokenizer *t, const char *s, size_t n) {
  int32_t id = tgc_tok_strtab_find(&t->vocab, s, n, 0);
  return id >= 0 && is_mergeable(t->type[id]) ? id : -1;
}

/* Whether symbols s[0..split) and s[split..n) may merge, and how urgently. */
static bool pair_prio(const tgc_tokenizer *t, const char *s, int split, int n, double *prio) {
  int32_t k = t->model == MODEL_LLAMA ? find_mergeable(t, s, (size_t)n)
                                      : tgc_tok_strtab_find(&t->merges, s, (size_t)n, (uint32_t)split);
  if (k < 0) return false;
  *prio = t->model == MODEL_LLAMA ? (double)t->score[k] : -(double)k;
  return true;
}

static void try_pair(const tgc_tokenizer *t, work *w, int left) {
  const sym *l = &w->syms[left];
  if (l->next < 0) return;
  int size = l->n + w->syms[l->next].n;
  double prio;
  if (pair_prio(t, w->buf + l->start, l->n, size, &prio)) heap_push(w, (cand){prio, left, size});
}

/* Splits w->buf[0..n) into one symbol per character; returns the count. */
static int split_chars(work *w, size_t n) {
  w->syms = reserve(w->syms, &w->syms_cap, n, sizeof *w->syms);
  int k = 0;
  for (size_t i = 0; i < n; k++) {
    int len = utf8_len((const unsigned char *)w->buf + i, n - i);
    w->syms[k] = (sym){(int)i, len, k - 1, i + (size_t)len < n ? k + 1 : -1};
    i += (size_t)len;
  }
  return k;
}

/* Merges the best pair until no pair may merge.  Symbol 0 stays the head
 * of the list. */
static void merge_symbols(const tgc_tokenizer *t, work *w, int nsym) {
  w->n_heap = 0;
  for (int i = 0; i + 1 < nsym; i++) try_pair(t, w, i);
  while (w->n_heap) {
    cand c = heap_pop(w);
    sym *l = &w->syms[c.left];
    if (l->n == 0 || l->next < 0) continue;
    sym *r = &w->syms[l->next];
    if (l->n + r->n != c.size) continue; /* a side merged since: stale */
    l->n += r->n;
    r->n = 0;
    l->next = r->next;
    if (l->next >= 0) w->syms[l->next].prev = c.left;
    if (l->prev >= 0) try_pair(t, w, l->prev);
    try_pair(t, w, c.left);
  }
}

/* ---- llama (SentencePiece) --------------------------------------------- */

static tgc_status no_token_for_byte(unsigned char b) {
  return tgc_set_error(TGC_ERR_ARG, "tgc_tok_encode: cannot encode byte 0x%02X: the vocabulary has no byte "
                       "token <0x%02X> and no unknown token", b, b);
}

/* A symbol not in the vocabulary falls back to one byte token per byte,
 * or to the unknown token when a byte token is missing. */
static tgc_status spm_emit(const tgc_tokenizer *t, work *w, const char *s, int n) {
  int32_t id = find_mergeable(t, s, (size_t)n);
  if (id >= 0) {
    push_id(w, id);
    return TGC_OK;
  }
  int missing = -1;
  for (int i = 0; i < n && missing < 0; i++)
    if (t->byte_id[(unsigned char)s[i]] < 0) missing = (unsigned char)s[i];
  if (missing < 0)
    for (int i = 0; i < n; i++) push_id(w, t->byte_id[(unsigned char)s[i]]);
  else if (t->unk >= 0)
    push_id(w, t->unk);
  else
    return no_token_for_byte((unsigned char)missing);
  return TGC_OK;
}

/* One text fragment: spaces become "▁" (and one goes in front with
 * prefix), characters merge by score, leftovers fall back to bytes. */
static tgc_status spm_encode(const tgc_tokenizer *t, work *w, const char *s, size_t n, bool prefix) {
  w->buf = reserve(w->buf, &w->buf_cap, 3 * (n + 1), 1);
  size_t m = 0;
  if (prefix) {
    memcpy(w->buf, SPM_SPACE, 3);
    m = 3;
  }
  for (size_t i = 0; i < n; i++) {
    if (s[i] == ' ') {
      memcpy(w->buf + m, SPM_SPACE, 3);
      m += 3;
    } else {
      w->buf[m++] = s[i];
    }
  }
  int nsym = split_chars(w, m);
  merge_symbols(t, w, nsym);
  for (int i = 0; i >= 0; i = w->syms[i].next) {
    tgc_status st = spm_emit(t, w, w->buf + w->syms[i].start, w->syms[i].n);
    if (st != TGC_OK) return st;
  }
  return TGC_OK;
}

/* ---- gpt2 (byte-level BPE) --------------------------------------------- */

static void push_span(work *w, size_t start, size_t len) {
  w->spans = reserve(w->spans, &w->spans_cap, w->n_spans + 1, sizeof *w->spans);
  w->spans[w->n_spans++] = (tgc_tok_span){start, len};
}

/* Splits s[0..n) into w->spans: the pattern's matches, and between them
 * the runs of invalid UTF-8 that no match covers.  The llama model does
 * not split. */
static tgc_status pretokenize(const tgc_tokenizer *t, work *w, const char *s, size_t n) {
  w->n_spans = 0;
  if (!t->re) {
    if (n) push_span(w, 0, n);
    return TGC_OK;
  }
  if (!w->md && !(w->md = pcre2_match_data_create_from_pattern(t->re, NULL)))
    return tgc_set_error(TGC_ERR_NOMEM, "tokenizer: out of memory for PCRE2 match data");
  for (size_t pos = 0; pos < n;) {
    int rc = pcre2_match(t->re, (PCRE2_SPTR)s, n, pos, 0, w->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = pcre2_match(t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_JIT, w->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) {
      push_span(w, pos, n - pos);
      break;
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
    if (rc < 0 || ov[1] <= ov[0] || ov[0] < pos) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc < 0 ? rc : PCRE2_ERROR_INTERNAL, msg, sizeof msg);
      return tgc_set_error(TGC_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer failed at byte %zu: %s", pos,
                           (const char *)msg);
    }
    if (ov[0] > pos) push_span(w, pos, ov[0] - pos);
    push_span(w, ov[0], ov[1] - ov[0]);
    pos = ov[1];
  }
  return TGC_OK;
}

/* A symbol not in the vocabulary: one token per byte (mapped character),
 * or the unknown token for a byte the vocabulary lacks. */
static tgc_status bpe_emit(const tgc_tokenizer *t, work *w, const char *s, int n) {
  int32_t id = find_mergeable(t, s, (size_t)n);
  if (id >= 0) {
    push_id(w, id);
    return TGC_OK;
  }
  for (int i = 0; i < n;) {
    int len = utf8_len((const unsigned char *)s + i, (size_t)(n - i));
    id = find_mergeable(t, s + i, (size_t)len);
    if (id < 0 && t->unk < 0)
      return no_token_for_byte((unsigned char)t->cp_byte[utf8_decode((const unsigned char *)s + i, len)]);
    push_id(w, id >= 0 ? id : t->unk);
    i += len;
  }
  return TGC_OK;
}

/* One piece: its bytes become GPT-2 characters, one symbol each, which
 * merge by rank. */
static tgc_status bpe_piece(const tgc_tokenizer *t, work *w, const unsigned char *s, size_t n) {
  w->buf = reserve(w->buf, &w->buf_cap, 2 * n, 1);
  w->syms = reserve(w->syms, &w->syms_cap, n, sizeof *w->syms);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    int len = utf8_put2(w->buf + m, t->byte_cp[s[i]]);
    w->syms[i] = (sym){(int)m, len, (int)i - 1, i + 1 < n ? (int)i + 1 : -1};
    m += (size_t)len;
  }
  int32_t whole = t->ignore_merges ? find_mergeable(t, w->buf, m) : -1;
  if (whole >= 0) {
    push_id(w, whole);
    return TGC_OK;
  }
  merge_symbols(t, w, (int)n);
  for (int i = 0; i >= 0; i = w->syms[i].next) {
    tgc_status st = bpe_emit(t, w, w->buf + w->syms[i].start, w->syms[i].n);
    if (st != TGC_OK) return st;
  }
  return TGC_OK;
}

static tgc_status bpe_encode(const tgc_tokenizer *t, work *w, const char *s, size_t n) {
  tgc_status st = pretokenize(t, w, s, n);
  for (size_t k = 0; st == TGC_OK && k < w->n_spans; k++)
    st = bpe_piece(t, w, (const unsigned char *)s + w->spans[k].start, w->spans[k].len);
  return st;
}

/* ---- encode ------------------------------------------------------------ */

/* The special token that s[0..n) begins with (the longest), or -1.
 * User-defined tokens always count; control and unknown ones only with
 * parse_special (as in llama.cpp). */
static int32_t match_special(const tgc_tokenizer *t, const char *s, size_t n, bool parse_special, size_t *len) {
  unsigned char b = (unsigned char)s[0];
  for (int k = t->special_at[b]; k < t->special_at[b + 1]; k++) {
    int32_t id = t->special[k];
    if (!parse_special && t->type[id] != TGC_TOK_USER_DEFINED) continue;
    const char *p = tgc_tok_strtab_get(&t->vocab, id, len);
    if (*len <= n && !memcmp(p, s, *len)) return id;
  }
  return -1;
}

/* A fragment of text between specials.  fresh: it starts the input or
 * follows a special, which is where llama puts its "▁" (as llama.cpp). */
static tgc_status encode_text(const tgc_tokenizer *t, work *w, const char *s, size_t n, bool fresh) {
  if (t->model == MODEL_LLAMA) return spm_encode(t, w, s, n, fresh && t->add_space_prefix);
  return bpe_encode(t, w, s, n);
}

/* BOS, then the text cut at the specials it holds, then EOS. */
static tgc_status encode_all(const tgc_tokenizer *t, work *w, const char *s, size_t n, bool add_special,
                             bool parse_special) {
  tgc_status st = TGC_OK;
  if (add_special && t->add_bos) push_id(w, t->bos);
  bool fresh = true;
  size_t start = 0, len;
  for (size_t i = 0; i < n && st == TGC_OK;) {
    int32_t id = match_special(t, s + i, n - i, parse_special, &len);
    if (id < 0) {
      i++;
      continue;
    }
    if (i > start) st = encode_text(t, w, s + start, i - start, fresh);
    push_id(w, id);
    fresh = true;
    i += len;
    start = i;
  }
  if (st == TGC_OK && n > start) st = encode_text(t, w, s + start, n - start, fresh);
  if (add_special && t->add_eos) push_id(w, t->eos);
  return st;
}

int tgc_tok_encode(const tgc_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                   int32_t *out, int cap) {
  if (!t || (!text && len) || cap < 0 || (!out && cap > 0)) {
    tgc_set_error(TGC_ERR_ARG, "tgc_tok_encode: bad arguments (tokenizer %p, text %p with length %zu, out %p with "
                  "cap %d)", (const void *)t, (const void *)text, len, (const void *)out, cap);
    return -1;
  }
  /* Up to 3 ids per byte (a space escaped to "▁" may fall back to its 3
   * bytes), which must fit an int. */
  if (len > INT_MAX / 4) {
    tgc_set_error(TGC_ERR_ARG, "tgc_tok_encode: text of %zu bytes is too long (at most %d)", len, INT_MAX / 4);
    return -1;
  }
  work w = {0};
  tgc_status st = encode_all(t, &w, len ? text : "", len, add_special, parse_special);
  int n = (int)w.n_ids;
  if (st == TGC_OK && cap > 0 && n > 0) memcpy(out, w.ids, (size_t)(n < cap ? n : cap) * sizeof *out);
  work_free(&w);
  return st == TGC_OK ? n : -1;
}

int tgc_tok_pretokenize(const tgc_tokenizer *t, const char *text, size_t len, tgc_tok_span *out, int cap) {
  if (!t || (!text && len) || cap < 0 || (!out && cap > 0) || len > INT_MAX / 4) {
    tgc_set_error(TGC_ERR_ARG, "tgc_tok_pretokenize: bad arguments (tokenizer %p, text %p with length %zu, out %p "
                  "with cap %d)", (const void *)t, (const void *)text, len, (const void *)out, cap);
    return -1;
  }
  work w = {0};
  tgc_status st = pretokenize(t, &w, len ? text : "", len);
  int n = (int)w.n_spans;
  if (st == TGC_OK && cap > 0 && n > 0) memcpy(out, w.spans, (size_t)(n < cap ? n : cap) * sizeof *out);
  work_free(&w);
  return st == TGC_OK ? n : -1;
}
