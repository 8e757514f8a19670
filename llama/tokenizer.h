/* tokenizer.h - text <-> token ids for LLaMA models, built from the
 * tokenizer.ggml.* metadata of a GGUF file (docs/tokenizers.md).
 *
 * Two models:
 *   "llama"  SentencePiece-style BPE by scores (LLaMA 1/2): spaces become
 *            U+2581 "▁", the text gets a leading "▁", characters merge by the
 *            highest-scoring pair, characters outside the vocabulary fall
 *            back to byte tokens <0xNN>.
 *   "gpt2"   byte-level BPE by merge rank (LLaMA 3): a PCRE2 pre-tokenizer
 *            splits the text, each piece's bytes map to GPT-2's printable
 *            characters and merge by the lowest rank.
 *
 * The constructor takes plain arrays, as the GGUF reader hands them out,
 * and copies what it keeps: the config and its arrays may be freed as soon
 * as tgc_tok_new returns.
 *
 * Errors: functions that fail return NULL or -1 and leave a message for
 * tgc_last_error() (status TGC_ERR_ARG for bad arguments and bad
 * configurations).  Nothing exits.
 *
 * Buffers: tgc_tok_encode, tgc_tok_decode, tgc_tok_piece and
 * tgc_tok_pretokenize work like snprintf: they return the full size of the
 * result and write as much of it as fits in cap; a result larger than cap
 * means the output was cut, so call again with a buffer of the returned
 * size.  out/buf may be NULL when cap is 0 (a pure size query).
 *
 * Threads: a tokenizer is read-only after tgc_tok_new; any number of
 * threads may encode and decode with one tokenizer at the same time.
 */
#ifndef TGC_LLAMA_TOKENIZER_H
#define TGC_LLAMA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tgc_tokenizer tgc_tokenizer;

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
typedef enum tgc_tok_type {
  TGC_TOK_UNDEFINED = 0,    /* treated as normal */
  TGC_TOK_NORMAL = 1,       /* ordinary text */
  TGC_TOK_UNKNOWN = 2,      /* <unk>: stands for text the vocabulary cannot spell */
  TGC_TOK_CONTROL = 3,      /* <s>, </s>, <|eot_id|>: never produced from text by default */
  TGC_TOK_USER_DEFINED = 4, /* added text tokens, always matched whole in the input */
  TGC_TOK_UNUSED = 5,       /* reserved slots; never produced, decode to nothing */
  TGC_TOK_BYTE = 6,         /* <0xNN>: one raw byte (byte fallback) */
} tgc_tok_type;

/* What tgc_tok_new needs; field names follow the GGUF keys. */
typedef struct tgc_tok_config {
  const char *model;              /* tokenizer.ggml.model: "llama" or "gpt2" */
  int n_vocab;                    /* number of tokens, > 0 */
  const char *const *tokens;      /* (n_vocab) tokenizer.ggml.tokens, as stored
                                   * (GPT-2 tokens in GPT-2's mapped characters) */
  const size_t *token_lens;       /* (n_vocab) byte lengths, or NULL: tokens are
                                   * NUL-terminated */
  const float *scores;            /* (n_vocab) tokenizer.ggml.scores, or NULL (all 0);
                                   * llama merges by these */
  const int32_t *types;           /* (n_vocab) tokenizer.ggml.token_type, or NULL:
                                   * all normal, except that tokens named <0xNN>
                                   * are byte tokens and bos/eos are control */
  int n_merges;                   /* gpt2: number of merges (0 with merges NULL) */
  const char *const *merges;      /* (n_merges) tokenizer.ggml.merges, "left right",
                                   * highest priority first */
  int32_t bos, eos;               /* tokenizer.ggml.bos/eos_token_id, -1 if absent */
  bool add_bos, add_eos;          /* tokenizer.ggml.add_bos/eos_token; need bos/eos */
  bool add_space_prefix;          /* tokenizer.ggml.add_space_prefix (llama only;
                                   * GGUF files that lack it mean true) */
  const char *pre;                /* tokenizer.ggml.pre (gpt2 only): "llama-bpe"
                                   * (also "llama3", "llama-v3", "smaug-bpe") for
                                   * LLaMA 3's split pattern, "gpt2"/"gpt-2" for
                                   * GPT-2's; NULL or "default" means LLaMA 3's */
} tgc_tok_config;

/* A tokenizer from cfg, or NULL with a message (TGC_ERR_ARG) when cfg is
 * NULL or inconsistent: unknown model or pre-tokenizer, no tokens, a NULL
 * token, a type out of 0..6, a byte token not named <0xNN>, bos/eos out
 * of range, add_bos/add_eos without a bos/eos id, a merge that is not two
 * tokens separated by a space; TGC_ERR_UNSUPPORTED if PCRE2 cannot
 * compile the pre-tokenizer (a PCRE2 built without Unicode support).  The
 * caller owns the result (tgc_tok_free). */
tgc_tokenizer *tgc_tok_new(const tgc_tok_config *cfg);
/* Frees tok; NULL does nothing. */
void tgc_tok_free(tgc_tokenizer *tok);

/* Encodes text[0..len) (any bytes; invalid UTF-8 and NULs included) into
 * token ids.  add_special adds BOS/EOS where the config says so.
 * User-defined tokens are matched literally in the text first; with
 * parse_special also control and unknown tokens ("<|eot_id|>" in the
 * text becomes that token, as llama.cpp's --special does), otherwise
 * their text is tokenized like any other.
 * Returns the number of ids and writes the first min(that, cap) to out;
 * -1 with a message when tok is NULL, text is NULL with len > 0, cap < 0,
 * out is NULL with cap > 0, or a character cannot be spelled (no byte
 * token for it and no unknown token); TGC_ERR_UNSUPPORTED if PCRE2 fails
 * (a match or memory limit). */
int tgc_tok_encode(const tgc_tokenizer *tok, const char *text, size_t len, bool add_special,
                   bool parse_special, int32_t *out, int cap);

/* Decodes ids[0..n) to the exact bytes they stand for.  Control, unknown
 * and unused tokens decode to nothing, or to their text when special is
 * set.  For the llama model with add_space_prefix, the space the encoder
 * put in front of the text is dropped from the first piece that has
 * bytes, so decode(encode(s)) == s (see docs/tokenizers.md for the two
 * exceptions).  Returns the number of bytes and writes the first
 * min(that, cap) to buf, followed by a NUL when there is room; -1 with a
 * message for a NULL tok, ids NULL with n > 0, n < 0, buf NULL with
 * cap > 0, or an id out of range. */
int64_t tgc_tok_decode(const tgc_tokenizer *tok, const int32_t *ids, int n, bool special,
                       char *buf, size_t cap);

/* The bytes of one token, for streaming: like tgc_tok_decode of {id} but
 * without dropping a leading space.  A multi-byte character may be split
 * over several byte tokens, so a piece need not be valid UTF-8 on its own;
 * write the pieces out as raw bytes.  Same conventions as tgc_tok_decode. */
int tgc_tok_piece(const tgc_tokenizer *tok, int32_t id, bool special, char *buf, size_t cap);

int tgc_tok_n_vocab(const tgc_tokenizer *tok);  /* 0 for NULL */
int32_t tgc_tok_bos(const tgc_tokenizer *tok);  /* -1 if none or NULL */
int32_t tgc_tok_eos(const tgc_tokenizer *tok);  /* -1 if none or NULL */
/* True for tokens that end a generation: EOS, and tokens named
 * <|eot_id|>, <|eom_id|> or <|end_of_text|> where the vocabulary has them
 * (LLaMA 3).  False for NULL or ids out of range. */
bool tgc_tok_is_eog(const tgc_tokenizer *tok, int32_t id);
/* The id of the token whose text is text[0..len), or -1. */
int32_t tgc_tok_find(const tgc_tokenizer *tok, const char *text, size_t len);
/* The token's text as stored in the vocabulary (NUL-terminated, owned by
 * tok); its length in *len when len is not NULL.  NULL when out of range. */
const char *tgc_tok_text(const tgc_tokenizer *tok, int32_t id, size_t *len);
/* The token's type; TGC_TOK_UNDEFINED for NULL or an id out of range. */
tgc_tok_type tgc_tok_type_of(const tgc_tokenizer *tok, int32_t id);

/* ---- for tests ---------------------------------------------------------- */

/* A piece of the input: text[start .. start + len). */
typedef struct tgc_tok_span {
  size_t start, len;
} tgc_tok_span;

/* The pieces the pre-tokenizer splits text[0..len) into before BPE (gpt2;
 * the llama model does not split, so its one piece is the whole text).
 * Bytes that are not valid UTF-8 form pieces of their own.  Specials are
 * not looked for.  Returns the number of pieces and writes the first
 * min(that, cap); -1 with a message on bad arguments. */
int tgc_tok_pretokenize(const tgc_tokenizer *tok, const char *text, size_t len, tgc_tok_span *out,
                        int cap);

#ifdef __cplusplus
}
#endif

#endif
