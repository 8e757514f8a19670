/* test_tokenizer.c - the llama (SentencePiece-style) and gpt2 (byte-level)
 * tokenizers of llama/tokenizer.h.
 *
 * The vocabularies are built here, small enough that the expected ids can
 * be worked out by hand; each expectation has its derivation beside it.
 * Two randomised tests compare the heap-driven merge loop with a naive
 * reference written below (rescan every pair after every merge), and the
 * round-trip tests check decode(encode(s)) == s byte for byte, invalid
 * UTF-8 included.
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tgc.h"
#include "../llama/tokenizer.h"

TestSuite(tokenizer);

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define IDS(...) ((const int32_t[]){__VA_ARGS__}), COUNT(((const int32_t[]){__VA_ARGS__}))
#define SP "\xe2\x96\x81" /* "▁" */

/* ---- helpers ------------------------------------------------------------ */

static void expect_ids(const int32_t *got, int n, const int32_t *want, int nwant, const char *what) {
  char g[512] = "", w[512] = "";
  for (int i = 0; i < n && strlen(g) < 480; i++) snprintf(g + strlen(g), sizeof g - strlen(g), " %d", (int)got[i]);
  for (int i = 0; i < nwant && strlen(w) < 480; i++)
    snprintf(w + strlen(w), sizeof w - strlen(w), " %d", (int)want[i]);
  cr_expect(n == nwant && !memcmp(got, want, (size_t)n * sizeof *got), "%s: got [%s ] want [%s ]", what, g, w);
}

/* Encodes s (length len) and compares with want. */
static void expect_encode(tgc_tokenizer *t, const char *s, size_t len, bool add_special, bool parse_special,
                          const int32_t *want, int nwant) {
  int32_t ids[256];
  int n = tgc_tok_encode(t, s, len, add_special, parse_special, ids, COUNT(ids));
  cr_assert(n >= 0 && n <= COUNT(ids), "encode \"%s\": %d (%s)", s, n, tgc_last_error());
  expect_ids(ids, n, want, nwant, s);
}
#define EXPECT_ENCODE(t, s, add, parse, ...) expect_encode(t, s, sizeof(s) - 1, add, parse, IDS(__VA_ARGS__))

/* Encodes then decodes; a malloc'd result (caller frees), its length in *n. */
static char *round_trip(tgc_tokenizer *t, const char *s, size_t len, bool add_special, size_t *out_len) {
  int n = tgc_tok_encode(t, s, len, add_special, false, NULL, 0);
  cr_assert(n >= 0, "encode: %s", tgc_last_error());
  int32_t *ids = malloc((size_t)n * sizeof *ids + 1);
  cr_assert_eq(tgc_tok_encode(t, s, len, add_special, false, ids, n), n);
  int64_t m = tgc_tok_decode(t, ids, n, false, NULL, 0);
  cr_assert(m >= 0, "decode: %s", tgc_last_error());
  char *buf = malloc((size_t)m + 1);
  cr_assert_eq(tgc_tok_decode(t, ids, n, false, buf, (size_t)m + 1), m);
  cr_expect_eq(buf[m], '\0');
  free(ids);
  *out_len = (size_t)m;
  return buf;
}

static void expect_round_trip(tgc_tokenizer *t, const char *s, size_t len, const char *what) {
  for (int add = 0; add < 2; add++) {
    size_t n;
    char *got = round_trip(t, s, len, add, &n);
    cr_expect(n == len && !memcmp(got, s, len), "%s (add_special %d): %zu bytes back of %zu", what, add, n, len);
    free(got);
  }
}

/* ---- a llama vocabulary ------------------------------------------------- *
 *
 *   id       text             type      score
 *   0        <unk>            unknown   0
 *   1        <s>              control   0      (bos)
 *   2        </s>             control   0      (eos)
 *   3..258   <0x00>..<0xFF>   byte      0      (id = 3 + byte)
 *   259..268 ▁ h e l o w r d a i      -100   (single characters)
 *   269 ll -1   270 he -2   271 hell -3   272 ▁hell -4   273 or -5
 *   274 ▁w -6   275 ▁wor -7  276 ld -8     277 ▁world -9  278 aa -10
 *   279 hi -11
 */
enum { L_UNK = 0, L_BOS = 1, L_EOS = 2, L_BYTE0 = 3, L_SP = 259, L_H, L_E, L_L, L_O, L_W, L_R, L_D, L_A, L_I,
       L_LL, L_HE, L_HELL, L_SPHELL, L_OR, L_SPW, L_SPWOR, L_LD, L_SPWORLD, L_AA, L_HI, L_N };

static const char *const llama_words[] = {SP,   "h",  "e",         "l",    "o",   "w",       "r",       "d",
                                          "a",  "i",  "ll",        "he",   "hell", SP "hell", "or",     SP "w",
                                          SP "wor", "ld", SP "world", "aa", "hi"};
static const float llama_word_scores[] = {-100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -1,
                                          -2,   -3,   -4,   -5,   -6,   -7,   -8,   -9,   -10,  -11};

typedef struct vocab {
  char *tokens[512];
  float scores[512];
  int32_t types[512];
  int n;
  char *merges[64];
  int n_merges;
} vocab;

static void add_token(vocab *v, const char *s, int type, float score) {
  v->tokens[v->n] = strdup(s);
  v->types[v->n] = type;
  v->scores[v->n] = score;
  v->n++;
}

static void vocab_free(vocab *v) {
  for (int i = 0; i < v->n; i++) free(v->tokens[i]);
  for (int i = 0; i < v->n_merges; i++) free(v->merges[i]);
}

static void llama_vocab(vocab *v) {
  memset(v, 0, sizeof *v);
  add_token(v, "<unk>", TGC_TOK_UNKNOWN, 0);
  add_token(v, "<s>", TGC_TOK_CONTROL, 0);
  add_token(v, "</s>", TGC_TOK_CONTROL, 0);
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    add_token(v, name, TGC_TOK_BYTE, 0);
  }
  for (int i = 0; i < COUNT(llama_words); i++) add_token(v, llama_words[i], TGC_TOK_NORMAL, llama_word_scores[i]);
  cr_assert_eq(v->n, L_N);
}

static tgc_tok_config llama_config(const vocab *v) {
  return (tgc_tok_config){.model = "llama", .n_vocab = v->n, .tokens = (const char *const *)v->tokens,
                          .scores = v->scores, .types = v->types, .bos = L_BOS, .eos = L_EOS,
                          .add_bos = true, .add_space_prefix = true};
}

static tgc_tokenizer *llama_tok(void) {
  vocab v;
  llama_vocab(&v);
  tgc_tok_config c = llama_config(&v);
  tgc_tokenizer *t = tgc_tok_new(&c);
  vocab_free(&v); /* the tokenizer keeps copies */
  cr_assert(t, "tgc_tok_new: %s", tgc_last_error());
  return t;
}

/* ---- a gpt2 vocabulary -------------------------------------------------- *
 *
 * ids 0..255: the 256 byte symbols, id = byte value, text = GPT-2's
 * character for the byte (printable Latin-1 as itself, the rest U+0100..;
 * space is "Ġ" U+0120).  Then:
 *   256 ll   257 He   258 Hell   259 Ġw   260 or   261 Ġwor   262 ld
 *   263 Ġworld   264 's   265 12   266 123   267 !!   268 45   269 456
 *   270 <|begin_of_text|> (control, bos)   271 <|end_of_text|> (control, eos)
 *   272 <|eot_id|> (control)   273 <tool> (user-defined)
 * Merges, rank = position:
 *   0 "l l"  1 "H e"  2 "He ll"  3 "Ġ w"  4 "o r"  5 "Ġw or"  6 "l d"
 *   7 "Ġwor ld"  8 "' s"  9 "1 2"  10 "12 3"  11 "! !"  12 "4 5"
 * (no merge makes "456": with LLaMA 3's ignore_merges the piece "456"
 * still becomes token 269, being in the vocabulary whole).
 */
enum { G_LL = 256, G_HE, G_HELL, G_SPW, G_OR, G_SPWOR, G_LD, G_SPWORLD, G_S, G_12, G_123, G_BANGS, G_45, G_456,
       G_BOT, G_EOT_TEXT, G_EOT_ID, G_TOOL, G_N };

/* GPT-2's bytes_to_unicode, as in its encoder.py. */
static int gpt2_char(int b) {
  bool kept = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  if (kept) return b;
  int n = 0;
  for (int c = 0; c < b; c++)
    if (!((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff))) n++;
  return 256 + n;
}

/* s with "_" standing for "Ġ" (the GPT-2 character of a space). */
static char *gspace(const char *s) {
  char *out = malloc(2 * strlen(s) + 1), *p = out;
  for (; *s; s++) {
    if (*s == '_') *p++ = (char)0xc4, *p++ = (char)0xa0;
    else *p++ = *s;
  }
  *p = '\0';
  return out;
}

static void gpt2_vocab(vocab *v) {
  memset(v, 0, sizeof *v);
  for (int b = 0; b < 256; b++) {
    int cp = gpt2_char(b);
    char s[3] = {0};
    if (cp < 0x80) s[0] = (char)cp;
    else s[0] = (char)(0xc0 | cp >> 6), s[1] = (char)(0x80 | (cp & 0x3f));
    add_token(v, s, TGC_TOK_NORMAL, 0);
  }
  const char *words[] = {"ll", "He", "Hell", "_w", "or", "_wor", "ld", "_world", "'s", "12", "123", "!!", "45", "456"};
  for (int i = 0; i < COUNT(words); i++) {
    char *w = gspace(words[i]);
    add_token(v, w, TGC_TOK_NORMAL, 0);
    free(w);
  }
  add_token(v, "<|begin_of_text|>", TGC_TOK_CONTROL, 0);
  add_token(v, "<|end_of_text|>", TGC_TOK_CONTROL, 0);
  add_token(v, "<|eot_id|>", TGC_TOK_CONTROL, 0);
  add_token(v, "<tool>", TGC_TOK_USER_DEFINED, 0);
  cr_assert_eq(v->n, G_N);
  const char *merges[] = {"l l", "H e", "He ll", "_ w", "o r", "_w or", "l d", "_wor ld", "' s", "1 2", "12 3",
                          "! !", "4 5"};
  for (int i = 0; i < COUNT(merges); i++) v->merges[v->n_merges++] = gspace(merges[i]);
}

static tgc_tok_config gpt2_config(const vocab *v, const char *pre) {
  return (tgc_tok_config){.model = "gpt2", .n_vocab = v->n, .tokens = (const char *const *)v->tokens,
                          .types = v->types, .n_merges = v->n_merges, .merges = (const char *const *)v->merges,
                          .bos = G_BOT, .eos = G_EOT_TEXT, .add_bos = true, .pre = pre};
}

static tgc_tokenizer *gpt2_tok(const char *pre) {
  vocab v;
  gpt2_vocab(&v);
  tgc_tok_config c = gpt2_config(&v, pre);
  tgc_tokenizer *t = tgc_tok_new(&c);
  vocab_free(&v);
  cr_assert(t, "tgc_tok_new: %s", tgc_last_error());
  return t;
}

/* ---- llama -------------------------------------------------------------- */

Test(tokenizer, llama_merges_by_score) {
  tgc_tokenizer *t = llama_tok();
  /* "hello world" -> "▁hello▁world" -> ▁ h e l l o ▁ w o r l d.
   * Pairs in the vocabulary: he -2, ll -1, ▁w -6, or -5, ld -8.
   *  1. ll (-1, the best)      ▁ h e [ll] o ▁ w o r l d     (e+ll, ll+o: none)
   *  2. he (-2)                ▁ [he] ll o ...              (new: he+ll = hell -3)
   *  3. hell (-3)              ▁ [hell] o ...               (new: ▁+hell = ▁hell -4)
   *  4. ▁hell (-4)             [▁hell] o ▁ w o r l d        (▁hello is no token)
   *  5. or (-5)                ... ▁ w [or] l d
   *  6. ▁w (-6)                ... [▁w] or l d              (new: ▁w+or = ▁wor -7)
   *  7. ▁wor (-7)              ... [▁wor] l d
   *  8. ld (-8)                ... ▁wor [ld]                (new: ▁wor+ld = ▁world -9)
   *  9. ▁world (-9)            [▁hell] [o] [▁world] */
  EXPECT_ENCODE(t, "hello world", false, false, L_SPHELL, L_O, L_SPWORLD);
  /* add_special puts BOS in front (add_bos), no EOS (add_eos is false). */
  EXPECT_ENCODE(t, "hello world", true, false, L_BOS, L_SPHELL, L_O, L_SPWORLD);
  /* Empty text: no tokens, and no "▁" either. */
  EXPECT_ENCODE(t, "", true, false, L_BOS);
  cr_expect_eq(tgc_tok_encode(t, "", 0, false, false, NULL, 0), 0);
  tgc_tok_free(t);
}

Test(tokenizer, llama_ties_go_leftmost) {
  tgc_tokenizer *t = llama_tok();
  /* "aaa" -> ▁ a a a: ▁a is no token; aa at 1-2 and at 2-3 tie (-10), the
   * left one merges: ▁ [aa] a, after which ▁aa and aaa are no tokens. */
  EXPECT_ENCODE(t, "aaa", false, false, L_SP, L_AA, L_A);
  /* "aaaa" -> ▁ a a a a: aa at 1, 2, 3; the left one first, then the pair
   * at 2-3 is stale (its left side was merged) and 3-4 merges: ▁ aa aa. */
  EXPECT_ENCODE(t, "aaaa", false, false, L_SP, L_AA, L_AA);
  tgc_tok_free(t);
}

Test(tokenizer, llama_byte_fallback) {
  tgc_tokenizer *t = llama_tok();
  /* "hi 🙂" -> ▁ h i ▁ 🙂: hi (-11) merges; ▁hi and hi▁ are no tokens.  🙂
   * (U+1F642, bytes F0 9F 99 82) is not in the vocabulary: four byte
   * tokens, 3 + byte each. */
  EXPECT_ENCODE(t, "hi \xf0\x9f\x99\x82", false, false, L_SP, L_HI, L_SP, L_BYTE0 + 0xf0, L_BYTE0 + 0x9f,
                L_BYTE0 + 0x99, L_BYTE0 + 0x82);
  /* A tab is no token either: <0x09>.  An invalid byte: <0xFF>. */
  EXPECT_ENCODE(t, "a\t\xff", false, false, L_SP, L_A, L_BYTE0 + 0x09, L_BYTE0 + 0xff);
  /* Decoding puts the bytes back together and drops the prefix space. */
  char buf[32];
  int32_t ids[] = {L_SP, L_HI, L_SP, L_BYTE0 + 0xf0, L_BYTE0 + 0x9f, L_BYTE0 + 0x99, L_BYTE0 + 0x82};
  cr_expect_eq(tgc_tok_decode(t, ids, COUNT(ids), false, buf, sizeof buf), 7);
  cr_expect_str_eq(buf, "hi \xf0\x9f\x99\x82");
  /* A piece streams the raw byte: half a character. */
  cr_expect_eq(tgc_tok_piece(t, L_BYTE0 + 0xf0, false, buf, sizeof buf), 1);
  cr_expect_eq((unsigned char)buf[0], 0xf0);
  tgc_tok_free(t);
}

Test(tokenizer, llama_unknown_fallback) {
  /* No byte tokens: a character outside the vocabulary becomes <unk>. */
  const char *tokens[] = {"<unk>", SP, "a"};
  int32_t types[] = {TGC_TOK_UNKNOWN, TGC_TOK_NORMAL, TGC_TOK_NORMAL};
  tgc_tok_config c = {.model = "llama", .n_vocab = 3, .tokens = tokens, .types = types, .bos = -1, .eos = -1,
                      .add_space_prefix = true};
  tgc_tokenizer *t = tgc_tok_new(&c);
  cr_assert(t, "%s", tgc_last_error());
  /* "a🙂" -> ▁ a 🙂 (▁a is no token) -> ▁, a, <unk> for the whole emoji. */
  EXPECT_ENCODE(t, "a\xf0\x9f\x99\x82", true, false, 1, 2, 0);
  char buf[16];
  int32_t ids[] = {1, 2, 0};
  cr_expect_eq(tgc_tok_decode(t, ids, 3, false, buf, sizeof buf), 1); /* <unk> decodes to nothing */
  cr_expect_str_eq(buf, "a");
  cr_expect_eq(tgc_tok_decode(t, ids, 3, true, buf, sizeof buf), 6);
  cr_expect_str_eq(buf, "a<unk>");
  tgc_tok_free(t);

  /* Neither byte tokens nor <unk>: an error that names the byte. */
  c.n_vocab = 2;
  c.tokens = tokens + 1;
  c.types = types + 1;
  t = tgc_tok_new(&c);
  cr_assert(t, "%s", tgc_last_error());
  EXPECT_ENCODE(t, "a a", false, false, 0, 1, 0, 1); /* ▁ a ▁ a (▁a is no token) */
  tgc_clear_error();
  int32_t out[8];
  cr_expect_eq(tgc_tok_encode(t, "a\xf0\x9f\x99\x82", 5, false, false, out, 8), -1);
  cr_expect_eq(tgc_last_status(), TGC_ERR_ARG);
  cr_expect(strstr(tgc_last_error(), "0xF0"), "message: %s", tgc_last_error());
  tgc_tok_free(t);
}

Test(tokenizer, llama_decode) {
  tgc_tokenizer *t = llama_tok();
  char buf[64];
  int32_t ids[] = {L_BOS, L_SPHELL, L_O, L_SPWORLD, L_EOS};
  /* Control tokens decode to nothing; the first space (the prefix) goes. */
  cr_expect_eq(tgc_tok_decode(t, ids, COUNT(ids), false, buf, sizeof buf), 11);
  cr_expect_str_eq(buf, "hello world");
  /* special: control tokens as text; the first bytes are then "<s>", so
   * the space of "▁hell" stays (as llama.cpp prints it). */
  cr_expect_eq(tgc_tok_decode(t, ids, COUNT(ids), true, buf, sizeof buf), 19);
  cr_expect_str_eq(buf, "<s> hello world</s>");
  /* Pieces keep their space. */
  cr_expect_eq(tgc_tok_piece(t, L_SPWORLD, false, buf, sizeof buf), 6);
  cr_expect_str_eq(buf, " world");
  cr_expect_eq(tgc_tok_piece(t, L_BOS, false, buf, sizeof buf), 0);
  cr_expect_str_eq(buf, "");
  cr_expect_eq(tgc_tok_piece(t, L_BOS, true, buf, sizeof buf), 3);
  cr_expect_str_eq(buf, "<s>");
  cr_expect_eq(tgc_tok_decode(t, NULL, 0, false, buf, sizeof buf), 0);
  tgc_tok_free(t);
}

Test(tokenizer, llama_parse_special) {
  tgc_tokenizer *t = llama_tok();
  /* Off: "<s>hi" is text.  ▁ < s > h i: only hi merges (▁<, <s, s>, >h
   * are no tokens); <, s and > are no tokens either: bytes 3C 73 3E. */
  EXPECT_ENCODE(t, "<s>hi", false, false, L_SP, L_BYTE0 + '<', L_BYTE0 + 's', L_BYTE0 + '>', L_HI);
  /* On: <s> is BOS; the text after a special gets the "▁" prefix, as in
   * llama.cpp: ▁ hi. */
  EXPECT_ENCODE(t, "<s>hi", false, true, L_BOS, L_SP, L_HI);
  EXPECT_ENCODE(t, "hi</s>hi", false, true, L_SP, L_HI, L_EOS, L_SP, L_HI);
  /* That second prefix is why decode gives "hi hi" back here: text with
   * specials in it does not round-trip through a llama tokenizer. */
  char buf[16];
  int32_t ids[] = {L_SP, L_HI, L_EOS, L_SP, L_HI};
  cr_expect_eq(tgc_tok_decode(t, ids, COUNT(ids), false, buf, sizeof buf), 5);
  cr_expect_str_eq(buf, "hi hi");
  /* Off, the bytes round-trip. */
  expect_round_trip(t, "<s>hi</s>", 9, "specials as text");
  tgc_tok_free(t);
}

Test(tokenizer, llama_bos_eos) {
  vocab v;
  llama_vocab(&v);
  tgc_tok_config c = llama_config(&v);
  c.add_eos = true;
  tgc_tokenizer *t = tgc_tok_new(&c);
  cr_assert(t, "%s", tgc_last_error());
  EXPECT_ENCODE(t, "hi", true, false, L_BOS, L_SP, L_HI, L_EOS);
  EXPECT_ENCODE(t, "hi", false, false, L_SP, L_HI);
  cr_expect_eq(tgc_tok_bos(t), L_BOS);
  cr_expect_eq(tgc_tok_eos(t), L_EOS);
  cr_expect(tgc_tok_is_eog(t, L_EOS));
  cr_expect(!tgc_tok_is_eog(t, L_BOS));
  tgc_tok_free(t);

  /* No add_space_prefix: no "▁" in front, and decode keeps a leading space. */
  c.add_space_prefix = false;
  c.add_eos = false;
  t = tgc_tok_new(&c);
  cr_assert(t, "%s", tgc_last_error());
  EXPECT_ENCODE(t, "hi", false, false, L_HI);
  EXPECT_ENCODE(t, " hi", false, false, L_SP, L_HI);
  expect_round_trip(t, " hi there ", 10, "no prefix");
  tgc_tok_free(t);

  /* No types at all: <0xNN> names are byte tokens, bos/eos control. */
  c.types = NULL;
  c.add_space_prefix = true;
  t = tgc_tok_new(&c);
  cr_assert(t, "%s", tgc_last_error());
  cr_expect_eq(tgc_tok_type_of(t, L_BYTE0 + 7), TGC_TOK_BYTE);
  cr_expect_eq(tgc_tok_type_of(t, L_BOS), TGC_TOK_CONTROL);
  cr_expect_eq(tgc_tok_type_of(t, L_HI), TGC_TOK_NORMAL);
  EXPECT_ENCODE(t, "hi \xf0\x9f\x99\x82", true, false, L_BOS, L_SP, L_HI, L_SP, L_BYTE0 + 0xf0, L_BYTE0 + 0x9f,
                L_BYTE0 + 0x99, L_BYTE0 + 0x82);
  tgc_tok_free(t);
  vocab_free(&v);
}

/* ---- gpt2 --------------------------------------------------------------- */

/* Pre-tokenizes s and compares the pieces with want (NULL-terminated). */
static void expect_pieces(tgc_tokenizer *t, const char *s, size_t len, const char *const *want) {
  tgc_tok_span sp[64];
  int n = tgc_tok_pretokenize(t, s, len, sp, COUNT(sp));
  cr_assert(n >= 0 && n <= COUNT(sp), "%s", tgc_last_error());
  int nwant = 0;
  while (want[nwant]) nwant++;
  cr_expect_eq(n, nwant, "\"%s\": %d pieces, want %d", s, n, nwant);
  for (int i = 0; i < n && i < nwant; i++)
    cr_expect(sp[i].len == strlen(want[i]) && !memcmp(s + sp[i].start, want[i], sp[i].len),
              "\"%s\" piece %d: \"%.*s\", want \"%s\"", s, i, (int)sp[i].len, s + sp[i].start, want[i]);
}
#define EXPECT_PIECES(t, s, ...) expect_pieces(t, s, sizeof(s) - 1, (const char *const[]){__VA_ARGS__, NULL})

Test(tokenizer, gpt2_pretokenize) {
  tgc_tokenizer *t = gpt2_tok("llama-bpe");
  /* LLaMA 3's pattern: letters with one optional non-letter in front,
   * contractions alone, digits by three, a space before digits alone. */
  EXPECT_PIECES(t, "Hello world's 123456 !!", "Hello", " world", "'s", " ", "123", "456", " !!");
  EXPECT_PIECES(t, "IT'S", "IT", "'S"); /* contractions ignore case */
  /* Newlines together; of a run of spaces, the last goes with the word. */
  EXPECT_PIECES(t, "a\n\nb  c", "a", "\n\n", "b", " ", " c");
  EXPECT_PIECES(t, "<|eot_id|>x", "<|", "eot", "_id", "|>", "x");
  /* Invalid UTF-8 is never part of a match: it makes pieces of its own. */
  EXPECT_PIECES(t, "a\xff" "b", "a", "\xff", "b");
  EXPECT_PIECES(t, "\xc3\xa9\x80\x80 x\xe2\x82", "\xc3\xa9", "\x80\x80", " x", "\xe2\x82");
  tgc_tok_free(t);
  /* GPT-2's pattern: a space joins digits, digit runs are not cut. */
  t = gpt2_tok("gpt2");
  EXPECT_PIECES(t, "Hello world's 123456 !!", "Hello", " world", "'s", " 123456", " !!");
  tgc_tok_free(t);
  /* The llama model does not split. */
  t = llama_tok();
  EXPECT_PIECES(t, "a b", "a b");
  tgc_tok_free(t);
}

Test(tokenizer, gpt2_merges_by_rank) {
  tgc_tokenizer *t = gpt2_tok("llama-bpe");
  /* Pieces "Hello", " world", "'s", " ", "123", "456", " !!":
   *  "Hello": no token whole; H e l l o: pairs He (rank 1), ll (rank 0):
   *    ll first though He is left of it: H e [ll] o; then He: [He] ll o;
   *    then He+ll (2): [Hell] o; Hell+o is no merge -> Hell, o (111).
   *  " world" is the token Ġworld whole (ignore_merges).
   *  "'s" is a token whole; " " is Ġ (byte 0x20 = id 32).
   *  "123" and "456" are tokens whole (no merge would make 456).
   *  " !!": Ġ ! !: "! !" (11) -> Ġ, !! (Ġ !! is no merge). */
  EXPECT_ENCODE(t, "Hello world's 123456 !!", false, false, G_HELL, 'o', G_SPWORLD, G_S, ' ', G_123, G_456, ' ',
                G_BANGS);
  EXPECT_ENCODE(t, "Hello world's 123456 !!", true, false, G_BOT, G_HELL, 'o', G_SPWORLD, G_S, ' ', G_123, G_456,
                ' ', G_BANGS);
  /* "lll": ll at 0-1 and 1-2 tie (rank 0): the left merges -> ll, l. */
  EXPECT_ENCODE(t, "lll", false, false, G_LL, 'l');
  tgc_tok_free(t);

  t = gpt2_tok("gpt2");
  /* GPT-2's pattern, no ignore_merges.  Pieces "Hello", " world", "'s",
   * " 123456", " !!":
   *  " world": Ġ w o r l d: Ġw (3): [Ġw] o r l d; or (4): Ġw [or] l d;
   *    Ġw+or (5): [Ġwor] l d; ld (6): Ġwor [ld]; Ġwor+ld (7): [Ġworld].
   *  "'s": ' s merge (8).
   *  " 123456": Ġ 1 2 3 4 5 6: 12 (9): Ġ [12] 3 4 5 6; 12+3 (10):
   *    Ġ [123] 4 5 6; 45 (12): Ġ 123 [45] 6; 45+6 is no merge -> Ġ 123 45 6. */
  EXPECT_ENCODE(t, "Hello world's 123456 !!", false, false, G_HELL, 'o', G_SPWORLD, G_S, ' ', G_123, G_45, '6', ' ',
                G_BANGS);
  tgc_tok_free(t);
}

Test(tokenizer, gpt2_specials) {
  tgc_tokenizer *t = gpt2_tok(NULL); /* NULL: LLaMA 3's pattern */
  /* Off: "<|eot_id|>" is text, pieces "<|" "eot" "_id" "|>" "x" that no
   * merge touches: one byte token each (id = byte). */
  EXPECT_ENCODE(t, "<|eot_id|>x", false, false, '<', '|', 'e', 'o', 't', '_', 'i', 'd', '|', '>', 'x');
  /* On: the control token. */
  EXPECT_ENCODE(t, "<|eot_id|>x", false, true, G_EOT_ID, 'x');
  EXPECT_ENCODE(t, "a<|begin_of_text|><|eot_id|>", true, true, G_BOT, 'a', G_BOT, G_EOT_ID);
  /* User-defined tokens are matched either way (as in llama.cpp). */
  EXPECT_ENCODE(t, "a<tool>b", false, false, 'a', G_TOOL, 'b');
  EXPECT_ENCODE(t, "a<tool>b", false, true, 'a', G_TOOL, 'b');

  char buf[64];
  int32_t ids[] = {G_BOT, 'H', 'i', G_TOOL, G_EOT_ID};
  cr_expect_eq(tgc_tok_decode(t, ids, COUNT(ids), false, buf, sizeof buf), 8);
  cr_expect_str_eq(buf, "Hi<tool>");
  cr_expect_eq(tgc_tok_decode(t, ids, COUNT(ids), true, buf, sizeof buf), 35);
  cr_expect_str_eq(buf, "<|begin_of_text|>Hi<tool><|eot_id|>");
  /* Byte-level decoding: Ġworld is " world", Ġ alone a space. */
  int32_t w[] = {' ', G_SPWORLD, '\n'};
  cr_expect_eq(tgc_tok_decode(t, w, COUNT(w), false, buf, sizeof buf), 8);
  cr_expect_str_eq(buf, "  world\n");

  /* End of generation: EOS, and <|eot_id|> by name. */
  cr_expect(tgc_tok_is_eog(t, G_EOT_TEXT));
  cr_expect(tgc_tok_is_eog(t, G_EOT_ID));
  cr_expect(!tgc_tok_is_eog(t, G_BOT));
  cr_expect(!tgc_tok_is_eog(t, 'a'));
  cr_expect(!tgc_tok_is_eog(t, -1));
  cr_expect(!tgc_tok_is_eog(t, G_N));
  cr_expect(!tgc_tok_is_eog(NULL, 0));
  tgc_tok_free(t);
}

Test(tokenizer, queries) {
  tgc_tokenizer *t = gpt2_tok(NULL);
  cr_expect_eq(tgc_tok_n_vocab(t), G_N);
  cr_expect_eq(tgc_tok_find(t, "<|eot_id|>", 10), G_EOT_ID);
  cr_expect_eq(tgc_tok_find(t, "\xc4\xa0world", 7), G_SPWORLD);
  cr_expect_eq(tgc_tok_find(t, "nope", 4), -1);
  size_t n;
  cr_expect_str_eq(tgc_tok_text(t, G_HELL, &n), "Hell");
  cr_expect_eq(n, 4);
  cr_expect_null(tgc_tok_text(t, G_N, &n));
  cr_expect_eq(tgc_tok_type_of(t, G_TOOL), TGC_TOK_USER_DEFINED);
  cr_expect_eq(tgc_tok_type_of(t, -3), TGC_TOK_UNDEFINED);
  tgc_tok_free(t);
  cr_expect_eq(tgc_tok_n_vocab(NULL), 0);
  cr_expect_eq(tgc_tok_bos(NULL), -1);
  cr_expect_eq(tgc_tok_eos(NULL), -1);
  tgc_tok_free(NULL);
}

/* ---- round trips -------------------------------------------------------- */

static const struct {
  const char *s;
  size_t len; /* 0: strlen */
} texts[] = {
    {"Hello world", 0},
    {"The quick brown fox jumps over the lazy dog. 1234567890 !@#$%^&*()", 0},
    {"h\xc3\xa9llo w\xc3\xb6rld", 0},                                    /* héllo wörld */
    {"\xce\x9a\xce\xb1\xce\xbb\xce\xb7\xce\xbc\xce\xad\xcf\x81\xce\xb1", 0}, /* Καλημέρα */
    {"\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c", 0},   /* 你好，世界 */
    /* مرحبا بالعالم */
    {"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd8\xa7\xd9\x84\xd8\xb9\xd8\xa7\xd9\x84\xd9\x85", 0},
    {"\xf0\x9f\x99\x82\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", 0},                 /* 🙂👍🏽 */
    {"\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 family", 0}, /* 👩‍👩‍👧 */
    {"a  b   c    d", 0},
    {"\tTab\tand\nnewline\r\nCRLF\n\n\n", 0},
    {"  leading", 0},
    {"trailing  ", 0},
    {" ", 0},
    {"   ", 0},
    {"\n", 0},
    {"it's I'LL we've", 0},
    {"\x80", 0},                         /* lone continuation byte */
    {"abc\x80\x80" "def", 0},
    {"\xc3", 0},                         /* truncated 2-byte sequence */
    {"trunc\xe2\x82", 0},                /* truncated 3-byte sequence */
    {"\xf0\x9f\x99", 0},                 /* truncated emoji */
    {"\xff\xfe x \xff", 0},
    {"\xed\xa0\x80 surrogate", 0},
    {"\xc0\xaf overlong", 0},
    {"\xc3\xa9\xff\xc3\xa9", 0},
    {"a\0b\0", 4},                       /* NUL bytes */
    {"", 0},
};

static void round_trip_all(tgc_tokenizer *t, const char *name) {
  for (int i = 0; i < COUNT(texts); i++) {
    size_t len = texts[i].len ? texts[i].len : strlen(texts[i].s);
    char what[64];
    snprintf(what, sizeof what, "%s text %d", name, i);
    expect_round_trip(t, texts[i].s, len, what);
  }
  /* Every byte value, in order and reversed. */
  char all[512];
  for (int i = 0; i < 256; i++) all[i] = (char)i, all[511 - i] = (char)i;
  expect_round_trip(t, all, sizeof all, "all bytes");
}

Test(tokenizer, llama_round_trip) {
  tgc_tokenizer *t = llama_tok();
  round_trip_all(t, "llama");
  tgc_tok_free(t);
}

Test(tokenizer, gpt2_round_trip) {
  tgc_tokenizer *t = gpt2_tok("llama-bpe");
  round_trip_all(t, "gpt2 llama-bpe");
  tgc_tok_free(t);
  t = gpt2_tok("gpt2");
  round_trip_all(t, "gpt2 gpt2");
  tgc_tok_free(t);
}

/* A long text: the merge loop is O(n log n) and the pre-tokenizer must not
 * run out of JIT stack on long runs (100 000 spaces, 100 000 letters). */
Test(tokenizer, long_text, .timeout = 60) {
  size_t len = 0, cap = 1 << 20;
  char *s = malloc(cap);
  const char *chunk = "Hello world's 123456 !! h\xc3\xa9llo \xf0\x9f\x99\x82\xff\n";
  while (len + 64 < cap / 2) {
    memcpy(s + len, chunk, strlen(chunk));
    len += strlen(chunk);
  }
  memset(s + len, ' ', 100000);
  len += 100000;
  memset(s + len, 'l', 100000);
  len += 100000;
  tgc_tokenizer *ts[] = {llama_tok(), gpt2_tok("llama-bpe"), gpt2_tok("gpt2")};
  for (int k = 0; k < COUNT(ts); k++) {
    expect_round_trip(ts[k], s, len, "long text");
    tgc_tok_free(ts[k]);
  }
  free(s);
}

/* ---- buffers and errors ------------------------------------------------- */

Test(tokenizer, buffer_too_small) {
  tgc_tokenizer *t = llama_tok();
  /* encode: the full count comes back, the first cap ids are written. */
  int32_t ids[4] = {-7, -7, -7, -7};
  cr_expect_eq(tgc_tok_encode(t, "hello world", 11, false, false, NULL, 0), 3);
  cr_expect_eq(tgc_tok_encode(t, "hello world", 11, false, false, ids, 2), 3);
  cr_expect_eq(ids[0], L_SPHELL);
  cr_expect_eq(ids[1], L_O);
  cr_expect_eq(ids[2], -7);
  /* decode: the full length; what fits; a NUL only when there is room. */
  int32_t in[] = {L_BOS, L_SPHELL, L_O, L_SPWORLD};
  char buf[16];
  memset(buf, '#', sizeof buf);
  cr_expect_eq(tgc_tok_decode(t, in, 4, false, NULL, 0), 11);
  cr_expect_eq(tgc_tok_decode(t, in, 4, false, buf, 5), 11);
  cr_expect(!memcmp(buf, "hello#", 6));
  memset(buf, '#', sizeof buf);
  cr_expect_eq(tgc_tok_decode(t, in, 4, false, buf, 11), 11);
  cr_expect(!memcmp(buf, "hello world#", 12));
  cr_expect_eq(tgc_tok_decode(t, in, 4, false, buf, 12), 11);
  cr_expect_eq(buf[11], '\0');
  /* piece likewise. */
  memset(buf, '#', sizeof buf);
  cr_expect_eq(tgc_tok_piece(t, L_SPWORLD, false, buf, 3), 6);
  cr_expect(!memcmp(buf, " wo#", 4));
  cr_expect_eq(tgc_tok_piece(t, L_SPWORLD, false, NULL, 0), 6);
  /* pretokenize likewise. */
  tgc_tokenizer *g = gpt2_tok(NULL);
  tgc_tok_span sp[2];
  cr_expect_eq(tgc_tok_pretokenize(g, "a b c", 5, sp, 2), 3);
  cr_expect_eq(sp[1].start, 1);
  cr_expect_eq(sp[1].len, 2);
  tgc_tok_free(g);
  tgc_tok_free(t);
}

static void expect_error(bool failed, const char *needle, const char *what) {
  cr_expect(failed, "%s: expected a failure", what);
  cr_expect_eq(tgc_last_status(), TGC_ERR_ARG, "%s: status %s", what, tgc_status_str(tgc_last_status()));
  cr_expect(strstr(tgc_last_error(), needle), "%s: message \"%s\" lacks \"%s\"", what, tgc_last_error(), needle);
  tgc_clear_error();
}

Test(tokenizer, bad_config) {
  vocab v;
  gpt2_vocab(&v);
  tgc_tok_config good = gpt2_config(&v, NULL), c;
  tgc_tokenizer *t = tgc_tok_new(&good);
  cr_assert(t, "%s", tgc_last_error());
  tgc_tok_free(t);

  expect_error(!tgc_tok_new(NULL), "NULL", "NULL config");
  c = good, c.model = "bert";
  expect_error(!tgc_tok_new(&c), "\"bert\"", "unknown model");
  c = good, c.model = NULL;
  expect_error(!tgc_tok_new(&c), "model", "no model");
  c = good, c.n_vocab = 0;
  expect_error(!tgc_tok_new(&c), "no tokens", "n_vocab 0");
  c = good, c.tokens = NULL;
  expect_error(!tgc_tok_new(&c), "no tokens", "tokens NULL");
  c = good, c.pre = "qwen2";
  expect_error(!tgc_tok_new(&c), "\"qwen2\"", "unknown pre");
  c = good, c.bos = G_N;
  expect_error(!tgc_tok_new(&c), "out of range", "bos out of range");
  c = good, c.eos = -2;
  expect_error(!tgc_tok_new(&c), "out of range", "eos out of range");
  c = good, c.bos = -1;
  expect_error(!tgc_tok_new(&c), "add_bos", "add_bos without bos");
  c = good, c.n_merges = 3, c.merges = NULL;
  expect_error(!tgc_tok_new(&c), "merges", "merges NULL");

  const char *merges[] = {"l l", "ll"};
  c = good, c.n_merges = 2, c.merges = merges;
  expect_error(!tgc_tok_new(&c), "merge 1 (\"ll\")", "merge without a space");
  merges[1] = "l ";
  expect_error(!tgc_tok_new(&c), "merge 1", "merge with an empty right side");

  int32_t types[G_N];
  memcpy(types, v.types, sizeof types);
  types[5] = 9;
  c = good, c.types = types;
  expect_error(!tgc_tok_new(&c), "token 5 has type 9", "bad type");
  types[5] = TGC_TOK_BYTE; /* "\x05" is not named <0xNN> */
  expect_error(!tgc_tok_new(&c), "token 5", "byte token with a bad name");

  char *saved = v.tokens[7];
  v.tokens[7] = NULL;
  expect_error(!tgc_tok_new(&good), "token 7 is NULL", "NULL token");
  v.tokens[7] = saved;
  vocab_free(&v);
}

Test(tokenizer, bad_arguments) {
  tgc_tokenizer *t = llama_tok();
  int32_t ids[4];
  char buf[8];
  expect_error(tgc_tok_encode(NULL, "a", 1, false, false, ids, 4) == -1, "tgc_tok_encode", "encode NULL tok");
  expect_error(tgc_tok_encode(t, NULL, 1, false, false, ids, 4) == -1, "tgc_tok_encode", "encode NULL text");
  expect_error(tgc_tok_encode(t, "a", 1, false, false, ids, -1) == -1, "tgc_tok_encode", "encode cap < 0");
  expect_error(tgc_tok_encode(t, "a", 1, false, false, NULL, 4) == -1, "tgc_tok_encode", "encode NULL out");
  cr_expect_eq(tgc_tok_encode(t, NULL, 0, true, false, ids, 4), 1); /* NULL with length 0 is empty text */
  int32_t bad[] = {L_HI, L_N};
  expect_error(tgc_tok_decode(t, bad, 2, false, buf, sizeof buf) == -1, "out of range", "decode bad id");
  bad[1] = -1;
  expect_error(tgc_tok_decode(t, bad, 2, false, buf, sizeof buf) == -1, "out of range", "decode id -1");
  expect_error(tgc_tok_decode(t, bad, -1, false, buf, sizeof buf) == -1, "tgc_tok_decode", "decode n < 0");
  expect_error(tgc_tok_decode(t, NULL, 2, false, buf, sizeof buf) == -1, "tgc_tok_decode", "decode NULL ids");
  expect_error(tgc_tok_decode(t, bad, 1, false, NULL, 8) == -1, "tgc_tok_decode", "decode NULL buf");
  expect_error(tgc_tok_piece(t, L_N, false, buf, sizeof buf) == -1, "tgc_tok_piece", "piece bad id");
  expect_error(tgc_tok_piece(NULL, 0, false, buf, sizeof buf) == -1, "tgc_tok_piece", "piece NULL tok");
  expect_error(tgc_tok_pretokenize(t, "a", 1, NULL, 3) == -1, "tgc_tok_pretokenize", "pretokenize NULL out");
  tgc_tok_free(t);
}

/* ---- against a naive reference ----------------------------------------- */

static uint32_t rng_state;
static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 1664525u + 1013904223u;
  return (rng_state >> 8) % n;
}

/* The token with text s[0..n) among v's normal tokens, by linear search. */
static int ref_find(const vocab *v, const char *s, size_t n) {
  for (int i = v->n - 1; i >= 0; i--) /* the last of duplicates, as the library */
    if (v->types[i] == TGC_TOK_NORMAL && strlen(v->tokens[i]) == n && !memcmp(v->tokens[i], s, n)) return i;
  return -1;
}

/* Naive SentencePiece BPE over ASCII-and-▁ text: after every merge,
 * rescan all pairs for the best score (the first of equals). */
static int ref_spm(const vocab *v, const char *text, int32_t *out) {
  char buf[1024];
  int start[512], len[512], n = 0, m = 0;
  memcpy(buf, SP, 3), m = 3;
  for (const char *p = text; *p; p++) {
    if (*p == ' ') memcpy(buf + m, SP, 3), m += 3;
    else buf[m++] = *p;
  }
  for (int i = 0; i < m; i += len[n++]) start[n] = i, len[n] = (unsigned char)buf[i] >= 0x80 ? 3 : 1;
  for (;;) {
    int best = -1;
    float best_score = 0;
    for (int i = 0; i + 1 < n; i++) {
      int id = ref_find(v, buf + start[i], (size_t)(len[i] + len[i + 1]));
      if (id >= 0 && (best < 0 || v->scores[id] > best_score)) best = i, best_score = v->scores[id];
    }
    if (best < 0) break;
    len[best] += len[best + 1];
    memmove(start + best + 1, start + best + 2, (size_t)(n - best - 2) * sizeof *start);
    memmove(len + best + 1, len + best + 2, (size_t)(n - best - 2) * sizeof *len);
    n--;
  }
  int k = 0;
  for (int i = 0; i < n; i++) {
    int id = ref_find(v, buf + start[i], (size_t)len[i]);
    if (id >= 0) out[k++] = id;
    else
      for (int j = 0; j < len[i]; j++) out[k++] = L_BYTE0 + (unsigned char)buf[start[i] + j];
  }
  return k;
}

Test(tokenizer, llama_matches_reference) {
  /* Byte tokens, then every string of 1-3 symbols over {a, b, ▁} with
   * scores from a set of four (many ties), a third of the longer ones
   * left out. */
  vocab v;
  llama_vocab(&v);
  for (int i = L_BYTE0 + 256; i < v.n; i++) free(v.tokens[i]);
  v.n = L_BYTE0 + 256;
  rng_state = 1;
  const char *alpha[] = {"a", "b", SP};
  for (int n = 1; n <= 3; n++) {
    int total = n == 1 ? 3 : n == 2 ? 9 : 27;
    for (int k = 0; k < total; k++) {
      char s[16] = "";
      for (int j = 0, x = k; j < n; j++, x /= 3) strcat(s, alpha[x % 3]);
      if (n > 1 && rnd(3) == 0) continue;
      add_token(&v, s, TGC_TOK_NORMAL, -(float)rnd(4));
    }
  }
  tgc_tok_config c = llama_config(&v);
  tgc_tokenizer *t = tgc_tok_new(&c);
  cr_assert(t, "%s", tgc_last_error());
  for (int iter = 0; iter < 500; iter++) {
    char text[64];
    int n = (int)rnd(40);
    for (int i = 0; i < n; i++) text[i] = "ab "[rnd(3)];
    text[n] = '\0';
    int32_t want[256], got[256];
    int nwant = ref_spm(&v, text, want);
    int ngot = tgc_tok_encode(t, text, (size_t)n, false, false, got, 256);
    char what[96];
    snprintf(what, sizeof what, "\"%s\"", text);
    if (n == 0) nwant = 0; /* empty text gets no prefix */
    expect_ids(got, ngot, want, nwant, what);
  }
  tgc_tok_free(t);
  vocab_free(&v);
}

/* Naive byte-level BPE over one piece of plain letters: the whole piece if
 * it is a token (ignore_merges), else the best-ranked pair (the first of
 * equals) after every merge. */
static int ref_bpe(const vocab *v, const char *text, int32_t *out) {
  int n = (int)strlen(text), k = 0;
  int id = ref_find(v, text, (size_t)n);
  if (id >= 0) {
    out[0] = id;
    return 1;
  }
  int start[64], len[64];
  for (int i = 0; i < n; i++) start[i] = i, len[i] = 1;
  for (;;) {
    int best = -1, best_rank = 0;
    for (int i = 0; i + 1 < n; i++)
      for (int r = 0; r < v->n_merges; r++) {
        const char *m = v->merges[r], *sp = strchr(m, ' ');
        if ((int)(sp - m) == len[i] && !memcmp(m, text + start[i], (size_t)len[i]) &&
            (int)strlen(sp + 1) == len[i + 1] && !memcmp(sp + 1, text + start[i + 1], (size_t)len[i + 1])) {
          if (best < 0 || r < best_rank) best = i, best_rank = r;
          break;
        }
      }
    if (best < 0) break;
    len[best] += len[best + 1];
    memmove(start + best + 1, start + best + 2, (size_t)(n - best - 2) * sizeof *start);
    memmove(len + best + 1, len + best + 2, (size_t)(n - best - 2) * sizeof *len);
    n--;
  }
  for (int i = 0; i < n; i++) out[k++] = ref_find(v, text + start[i], (size_t)len[i]);
  return k;
}

Test(tokenizer, gpt2_matches_reference) {
  /* The 256 byte symbols, then 60 random merges of two tokens made so far
   * out of {a, b, c}, each adding its result to the vocabulary. */
  vocab v;
  gpt2_vocab(&v);
  for (int i = 0; i < v.n_merges; i++) free(v.merges[i]);
  for (int i = 256; i < v.n; i++) free(v.tokens[i]);
  v.n = 256;
  v.n_merges = 0;
  rng_state = 7;
  const char *made[64] = {"a", "b", "c"};
  int n_made = 3;
  while (v.n_merges < 60) {
    const char *x = made[rnd((uint32_t)n_made)], *y = made[rnd((uint32_t)n_made)];
    if (strlen(x) + strlen(y) > 6) continue;
    char m[16], xy[16];
    snprintf(m, sizeof m, "%s %s", x, y);
    snprintf(xy, sizeof xy, "%s%s", x, y);
    bool dup = false;
    for (int i = 0; i < v.n_merges; i++) dup |= !strcmp(v.merges[i], m);
    if (dup) continue;
    v.merges[v.n_merges++] = strdup(m);
    if (ref_find(&v, xy, strlen(xy)) < 0) {
      add_token(&v, xy, TGC_TOK_NORMAL, 0);
      if (n_made < 64) made[n_made++] = v.tokens[v.n - 1];
    }
  }
  tgc_tok_config c = {.model = "gpt2", .n_vocab = v.n, .tokens = (const char *const *)v.tokens, .types = v.types,
                      .n_merges = v.n_merges, .merges = (const char *const *)v.merges, .bos = -1, .eos = -1};
  tgc_tokenizer *t = tgc_tok_new(&c);
  cr_assert(t, "%s", tgc_last_error());
  for (int iter = 0; iter < 500; iter++) {
    char text[48];
    int n = 1 + (int)rnd(40);
    for (int i = 0; i < n; i++) text[i] = "abc"[rnd(3)];
    text[n] = '\0';
    int32_t want[64], got[64];
    int nwant = ref_bpe(&v, text, want);
    int ngot = tgc_tok_encode(t, text, (size_t)n, false, false, got, 64);
    char what[96];
    snprintf(what, sizeof what, "\"%s\"", text);
    expect_ids(got, ngot, want, nwant, what);
  }
  tgc_tok_free(t);
  vocab_free(&v);
}

/* Random byte strings, biased towards pieces of UTF-8 (lead bytes,
 * continuation bytes, spaces, letters, digits), must round-trip. */
Test(tokenizer, random_bytes_round_trip) {
  tgc_tokenizer *ts[] = {llama_tok(), gpt2_tok("llama-bpe"), gpt2_tok("gpt2")};
  const unsigned char common[] = {' ', ' ', '\n', '\t', 'a', 'l', 'o', '1', '\'', 's', '!', 0x80, 0xbf, 0xc3,
                                  0xa9, 0xe2, 0x96, 0x81, 0xf0, 0x9f, 0xff, 0x00};
  rng_state = 12345;
  for (int iter = 0; iter < 400; iter++) {
    char s[96];
    size_t n = rnd(96);
    for (size_t i = 0; i < n; i++) s[i] = (char)(rnd(2) ? common[rnd(sizeof common)] : rnd(256));
    /* llama spells "▁" (E2 96 81) in the text as a space: leave it out. */
    for (size_t i = 0; i + 2 < n; i++)
      if (!memcmp(s + i, SP, 3)) s[i] = 'x';
    char what[32];
    snprintf(what, sizeof what, "random text %d", iter);
    for (int k = 0; k < COUNT(ts); k++) expect_round_trip(ts[k], s, n, what);
  }
  for (int k = 0; k < COUNT(ts); k++) tgc_tok_free(ts[k]);
}
