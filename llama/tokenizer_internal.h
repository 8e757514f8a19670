/* tokenizer_internal.h - what tokenizer.c (building, encoding) and
 * tokenizer_decode.c (decoding, queries) share.  Not for callers: include
 * <pcre2.h> with PCRE2_CODE_UNIT_WIDTH 8 first.
 */
#ifndef TGC_LLAMA_TOKENIZER_INTERNAL_H
#define TGC_LLAMA_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

#define MAX_EOG 4

/* A list of byte strings, optionally indexed by a hash table.  The key of
 * string i is its bytes and tag[i] (0 for the vocabulary, the split point
 * for merges). */
typedef struct strtab {
  char *bytes;     /* every string back to back, each followed by a NUL */
  size_t size, bytes_cap;
  size_t *off;     /* (n + 1) string i is bytes[off[i] .. off[i+1] - 1) */
  uint32_t *tag;   /* (n) */
  int n;
  int32_t *slot;   /* (mask + 1) index of a string, or -1; NULL until indexed */
  size_t mask;
} strtab;
const char *tgc_tok_strtab_get(const strtab *t, int i, size_t *n);
int32_t tgc_tok_strtab_find(const strtab *t, const char *s, size_t n, uint32_t tag);

typedef enum tok_model {
  MODEL_LLAMA, /* SentencePiece-style BPE by scores */
  MODEL_GPT2,  /* byte-level BPE by merge rank */
} tok_model;

struct tgc_tokenizer {
  tok_model model;
  int n_vocab;
  strtab vocab;           /* (n_vocab) token texts as given, indexed */
  strtab pieces;          /* (n_vocab) the bytes each token decodes to; empty
                           * for control, unknown and unused tokens */
  uint8_t *type;          /* (n_vocab) tgc_tok_type */
  float *score;           /* (n_vocab) llama merge priority */
  strtab merges;          /* gpt2: merge r is "ab" tagged strlen("a"), indexed */
  int32_t byte_id[256];   /* the byte token of each byte value, or -1 */
  int32_t unk, bos, eos;  /* -1 if none */
  bool add_bos, add_eos;
  bool add_space_prefix;  /* llama: "▁" in front of each text fragment */
  bool ignore_merges;     /* gpt2: a piece in the vocabulary is not merged */
  int32_t eog[MAX_EOG];   /* (n_eog) tokens that end a generation */
  int n_eog;
  int32_t *special;       /* (n_special) control, unknown and user-defined tokens
                           * in order of first byte, then longest first */
  int n_special;
  int special_at[257];    /* special[special_at[b] .. special_at[b+1]) begin with b */
  uint16_t byte_cp[256];  /* gpt2: the printable character each byte maps to */
  int16_t cp_byte[324];   /* gpt2: the byte a mapped character stands for, or -1 */
  pcre2_code *re;         /* gpt2: the pre-tokenizer */
};

/* Tokens that stand for text (decoded to bytes, produced by merges). */
static inline bool is_text(int type) {
  return type != TGC_TOK_CONTROL && type != TGC_TOK_UNKNOWN && type != TGC_TOK_UNUSED;
}
#endif
