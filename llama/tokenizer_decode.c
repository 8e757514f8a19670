/* tokenizer_decode.c - token ids back to bytes, and the queries of
 * tokenizer.h.  Every token's bytes are computed once by tgc_tok_new
 * (tokenizer.c), so decoding only copies them.
 */
#include "tgc_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"
#include "tokenizer_internal.h"

/* ---- decode ------------------------------------------------------------ */

static const char *token_bytes(const tgc_tokenizer *t, int32_t id, bool special, size_t *n) {
  if (special && !is_text(t->type[id])) return tgc_tok_strtab_get(&t->vocab, id, n);
  return tgc_tok_strtab_get(&t->pieces, id, n);
}

/* Writes what fits of p[0..n) at buf[at..cap). */
static void put_bytes(char *buf, size_t cap, size_t at, const char *p, size_t n) {
  if (at >= cap) return;
  size_t k = n < cap - at ? n : cap - at;
  if (k) memcpy(buf + at, p, k);
}

int64_t tgc_tok_decode(const tgc_tokenizer *t, const int32_t *ids, int n, bool special, char *buf, size_t cap) {
  if (!t || n < 0 || (!ids && n > 0) || (!buf && cap > 0)) {
    tgc_set_error(TGC_ERR_ARG, "tgc_tok_decode: bad arguments (tokenizer %p, %d ids at %p, buf %p with cap %zu)",
                  (const void *)t, n, (const void *)ids, (void *)buf, cap);
    return -1;
  }
  bool strip = t->add_space_prefix; /* the space spm_encode put in front */
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= t->n_vocab) {
      tgc_set_error(TGC_ERR_ARG, "tgc_tok_decode: token %d (at %d) is out of range [0, %d)", (int)ids[i], i,
                    t->n_vocab);
      return -1;
    }
    size_t len;
    const char *p = token_bytes(t, ids[i], special, &len);
    if (strip && len) {
      if (p[0] == ' ') p++, len--;
      strip = false;
    }
    put_bytes(buf, cap, total, p, len);
    total += len;
  }
  if (total < cap) buf[total] = '\0';
  return (int64_t)total;
}

int tgc_tok_piece(const tgc_tokenizer *t, int32_t id, bool special, char *buf, size_t cap) {
  if (!t || id < 0 || id >= t->n_vocab || (!buf && cap > 0)) {
    tgc_set_error(TGC_ERR_ARG, "tgc_tok_piece: bad arguments (tokenizer %p, token %d of %d, buf %p with cap %zu)",
                  (const void *)t, (int)id, t ? t->n_vocab : 0, (void *)buf, cap);
    return -1;
  }
  size_t len;
  const char *p = token_bytes(t, id, special, &len);
  put_bytes(buf, cap, 0, p, len);
  if (len < cap) buf[len] = '\0';
  return (int)len;
}

/* ---- queries ----------------------------------------------------------- */

int tgc_tok_n_vocab(const tgc_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t tgc_tok_bos(const tgc_tokenizer *t) { return t ? t->bos : -1; }
int32_t tgc_tok_eos(const tgc_tokenizer *t) { return t ? t->eos : -1; }

bool tgc_tok_is_eog(const tgc_tokenizer *t, int32_t id) {
  if (!t || id < 0) return false;
  for (int k = 0; k < t->n_eog; k++)
    if (t->eog[k] == id) return true;
  return false;
}

int32_t tgc_tok_find(const tgc_tokenizer *t, const char *text, size_t len) {
  if (!t || (!text && len)) return -1;
  return tgc_tok_strtab_find(&t->vocab, len ? text : "", len, 0);
}

const char *tgc_tok_text(const tgc_tokenizer *t, int32_t id, size_t *len) {
  if (!t || id < 0 || id >= t->n_vocab) return NULL;
  size_t n;
  const char *s = tgc_tok_strtab_get(&t->vocab, id, &n);
  if (len) *len = n;
  return s;
}

tgc_tok_type tgc_tok_type_of(const tgc_tokenizer *t, int32_t id) {
  if (!t || id < 0 || id >= t->n_vocab) return TGC_TOK_UNDEFINED;
  return (tgc_tok_type)t->type[id];
}
