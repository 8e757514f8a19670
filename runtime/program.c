/* program.c - from kernel ASTs to loaded programs, through the caches.
 *
 * Memory first: kernel ASTs are hash-consed, so a repeated kernel is the
 * same AST pointer and costs one lookup.  Otherwise the kernel is
 * optimised, lowered and rendered, and its source is keyed (XXH3-128 of
 * the source, the compiler's identity and the language); the key names
 * the function and the disk cache entry.  Everything that misses both
 * caches is compiled in one call, which the device batches and runs in
 * parallel: cold start is one compiler wave, not one process per kernel.
 */
#include "tgc_internal.h"

#include <errno.h>
#include <sys/stat.h>

/* An open hash from a pointer or key to a program. */
typedef struct pentry {
  const void *ast; /* AST pointer, or NULL for key entries */
  tgc_key key;
  tgc_program *prog;
} pentry;

struct tgc_progcache {
  pentry *e;
  size_t cap, n;
  tgc_program **all;
  int nall, capall;
};

static uint64_t pe_hash(const void *ast, tgc_key key) {
  return ast ? (uint64_t)(uintptr_t)ast * 0x9E3779B97F4A7C15ull : key.lo;
}

static tgc_program *pc_find(struct tgc_progcache *c, const void *ast, tgc_key key) {
  if (!c->cap) return NULL;
  for (size_t i = pe_hash(ast, key) & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
    pentry *e = &c->e[i];
    if (!e->prog) return NULL;
    if (e->ast == ast && (ast || (e->key.lo == key.lo && e->key.hi == key.hi))) return e->prog;
  }
}

static void pc_put(struct tgc_progcache *c, const void *ast, tgc_key key, tgc_program *p) {
  if ((c->n + 1) * 2 > c->cap) {
    struct tgc_progcache o = *c;
    c->cap = o.cap ? o.cap * 2 : 256;
    c->e = tgc_xcalloc(c->cap, sizeof *c->e);
    c->n = 0;
    for (size_t i = 0; i < o.cap; i++)
      if (o.e[i].prog) pc_put(c, o.e[i].ast, o.e[i].key, o.e[i].prog);
    free(o.e);
  }
  size_t i = pe_hash(ast, key) & (c->cap - 1);
  while (c->e[i].prog) i = (i + 1) & (c->cap - 1);
  c->e[i] = (pentry){ast, key, p};
  c->n++;
}

static tgc_program *pc_new_program(struct tgc_progcache *c) {
  if (c->nall == c->capall)
    c->all = tgc_xrealloc(c->all, sizeof *c->all * (size_t)(c->capall = c->capall ? c->capall * 2 : 64));
  return c->all[c->nall++] = tgc_xcalloc(1, sizeof(tgc_program));
}

void tgc_programs_free(tgc_ctx *ctx) {
  struct tgc_progcache *c = ctx->progs;
  if (!c) return;
  for (int i = 0; i < c->nall; i++) {
    if (c->all[i]->handle) ctx->dev->unload(ctx->dev, c->all[i]);
    free(c->all[i]);
  }
  free(c->all);
  free(c->e);
  free(c);
  ctx->progs = NULL;
}

/* ---- one kernel: optimise, lower, render --------------------------------- */

typedef struct pending {
  int index;        /* into the caller's arrays */
  tgc_program *prog;
  char *src;
  tgc_key key;
  bool from_disk;
} pending;

static void print_ast(const tgc_uop *a, int depth) {
  fprintf(stderr, "%*s%s %s", depth * 2, "", tgc_ops[a->op].name, tgc_dtypes[a->dtype].name);
  if (a->op == TGC_OP_VIEW) {
    const tgc_view *v = tgc_st_top((const tgc_st *)a->arg);
    char s[160];
    fprintf(stderr, " %s views=%d off=%lld%s", tgc_shape_str(v->ndim, v->shape, s, sizeof s),
            ((const tgc_st *)a->arg)->nviews, (long long)v->offset, v->has_mask ? " masked" : "");
  }
  fprintf(stderr, "\n");
  for (int i = 0; i < a->nsrc; i++) print_ast(a->src[i], depth + 1);
}

/* Optimises and lowers a kernel for a language; NULL with an error if its
 * shape cannot be lowered. */
static tgc_linprog *generate(tgc_ctx *ctx, tgc_uop *ast, const tgc_lang *lang) {
  tgc_kshape ks;
  tgc_linprog *lp = NULL;
  if (tgc_kshape_init(&ks, ast)) {
    if (!ctx->noopt) tgc_opt_heuristic(&ks, lang);
    lp = tgc_lower(ast, &ks, lang);
  } else {
    tgc_set_error(TGC_ERR_UNSUPPORTED, "kernel shape cannot be lowered");
  }
  tgc_kshape_free(&ks);
  return lp;
}

/* The source with its function renamed: the name occurs once, in the
 * signature, as "name(". */
static char *rename_kernel(const char *src, const char *from, const char *to) {
  char pat[80];
  snprintf(pat, sizeof pat, " %s(", from);
  const char *at = strstr(src, pat);
  TGC_ASSERT(at);
  tgc_str out = {0};
  tgc_str_fmt(&out, "%.*s %s(%s", (int)(at - src), src, to, at + strlen(pat));
  return out.s;
}

/* Renders the kernel; the function name carries the source's key. */
static char *render_kernel(tgc_ctx *ctx, tgc_uop *ast, const char *ccid, tgc_prog_info *info,
                           tgc_key *key) {
  if (ctx->debug >= 5) print_ast(ast, 0);
  tgc_linprog *lp = generate(ctx, ast, ctx->dev->lang);
  if (!lp) return NULL;
  char *base = tgc_render(ctx->dev->lang, lp);
  tgc_hasher *h = tgc_hasher_new();
  tgc_hasher_feed_str(h, base);
  tgc_hasher_feed_str(h, ccid);
  tgc_hasher_feed_str(h, ctx->dev->lang->name);
  *key = tgc_hasher_finish(h);
  char hex[33], name[sizeof lp->info.name];
  tgc_key_hex(*key, hex);
  snprintf(name, sizeof name, "%.48s_%.12s", lp->info.name, hex);
  char *src = rename_kernel(base, lp->info.name, name);
  free(base);
  *info = lp->info;
  snprintf(info->name, sizeof info->name, "%s", name);
  tgc_linprog_free(lp);
  if (ctx->debug >= 3) fprintf(stderr, "tgc: %s opts: %s\n", info->name, info->opts[0] ? info->opts : "none");
  if (ctx->debug >= 4) fprintf(stderr, "%s\n", src);
  return src;
}

/* ---- cross-checking kernels for CUDA ------------------------------------- */

/* TGC_XCHECK=cuda: every kernel is also optimised, lowered and rendered
 * for CUDA and compiled by NVRTC for sm_80 and sm_90, without a GPU, so
 * a test suite run on the CPU proves that the CUDA renderer's output
 * compiles.  Verdicts are cached on disk like binaries. */
static tgc_status xcheck_cuda(tgc_ctx *ctx, tgc_uop *ast) {
  static const char *const archs[] = {"sm_80", "sm_90"};
  const char *ver = tgc_nvrtc_version();
  if (!ver) { /* a machine without the CUDA toolkit checks nothing, and says so */
    tgc_warn_once("TGC_XCHECK=cuda skipped: NVRTC not found (%s)", tgc_last_error());
    tgc_clear_error();
    return TGC_OK;
  }
  tgc_linprog *lp = generate(ctx, ast, &tgc_lang_cuda);
  if (!lp) return tgc_last_status();
  char *src = tgc_render(&tgc_lang_cuda, lp);
  tgc_linprog_free(lp);
  if (ctx->debug >= 4) fprintf(stderr, "tgc: CUDA cross-check:\n%s\n", src);
  tgc_status st = TGC_OK;
  for (int a = 0; st == TGC_OK && a < 2; a++) {
    tgc_hasher *h = tgc_hasher_new();
    tgc_hasher_feed_str(h, src);
    tgc_hasher_feed_str(h, archs[a]);
    tgc_hasher_feed_str(h, ver);
    tgc_key key = tgc_hasher_finish(h);
    size_t len;
    void *ok = tgc_disk_get("xcheck", key, &len);
    if (ok) {
      free(ok);
      continue;
    }
    void *cubin = NULL;
    st = tgc_nvrtc_compile(src, archs[a], &cubin, &len);
    free(cubin);
    ctx->stats.xchecks++;
    if (st == TGC_OK) tgc_disk_put("xcheck", key, "ok", 2);
    else tgc_fail_in("CUDA cross-check");
  }
  if (st != TGC_OK) fprintf(stderr, "tgc: CUDA source that failed:\n%s\n", src);
  free(src);
  return st;
}

/* ---- the dump directory --------------------------------------------------- */

static void dump_program(tgc_ctx *ctx, const tgc_program *p, const char *src) {
  char path[4096];
  if (mkdir(ctx->dump_dir, 0755) && errno != EEXIST) {
    tgc_warn_once("cannot create the dump directory %s: %s", ctx->dump_dir, strerror(errno));
    return;
  }
  snprintf(path, sizeof path, "%s/%s.%s", ctx->dump_dir, p->info.name, ctx->dev->lang->ext);
  FILE *f = fopen(path, "w");
  if (!f) {
    tgc_warn_once("cannot write the dump file %s: %s", path, strerror(errno));
    return;
  }
  fputs(src, f);
  fclose(f);
  snprintf(path, sizeof path, "%s/%s.json", ctx->dump_dir, p->info.name);
  if (!(f = fopen(path, "w"))) return;
  const tgc_prog_info *in = &p->info;
  fprintf(f, "{\n  \"name\": \"%s\",\n  \"device\": \"%s\",\n  \"language\": \"%s\",\n", in->name,
          ctx->dev->name, ctx->dev->lang->name);
  fprintf(f, "  \"launch\": {\"parallel_axis\": %lld, \"min_chunk\": %lld, \"grid\": [%lld, %lld, %lld], "
             "\"block\": [%lld, %lld, %lld]},\n",
          (long long)in->par_n, (long long)in->par_min_chunk, (long long)in->grid[0], (long long)in->grid[1],
          (long long)in->grid[2], (long long)in->block[0], (long long)in->block[1], (long long)in->block[2]);
  fprintf(f, "  \"buffers\": [");
  for (int i = 0; i < in->nglobals; i++)
    fprintf(f, "%s\n    {\"slot\": %d, \"dtype\": \"%s\", \"elements\": %lld, \"bytes\": %lld, \"output\": %s}",
            i ? "," : "", i, tgc_dtypes[in->gdtype[i]].name, (long long)in->gnumel[i],
            (long long)in->gnumel[i] * tgc_dtypes[in->gdtype[i]].bytes, i ? "false" : "true");
  fprintf(f, "\n  ],\n  \"opts\": \"%s\",\n  \"flops\": %.0f,\n  \"bytes\": %.0f\n}\n", in->opts,
          in->flops, in->bytes);
  fclose(f);
}

/* ---- the programs of a schedule ------------------------------------------ */

static tgc_status load_bin(tgc_ctx *ctx, pending *q, const void *bin, size_t len) {
  return ctx->dev->load(ctx->dev, q->prog, bin, len);
}

/* Looks on disk; returns true if the program was loaded from there. */
static bool try_disk(tgc_ctx *ctx, pending *q) {
  size_t len;
  void *bin = tgc_disk_get(ctx->dev->name, q->key, &len);
  if (!bin) return false;
  tgc_status st = load_bin(ctx, q, bin, len);
  free(bin);
  if (st != TGC_OK) {
    tgc_clear_error(); /* an unloadable entry is recompiled and replaced */
    return false;
  }
  return true;
}

static tgc_status compile_pending(tgc_ctx *ctx, pending *qs, int nq) {
  if (!nq) return TGC_OK;
  const char **srcs = tgc_xmalloc(sizeof *srcs * (size_t)nq);
  void **bins = tgc_xcalloc((size_t)nq, sizeof *bins);
  size_t *lens = tgc_xcalloc((size_t)nq, sizeof *lens);
  for (int i = 0; i < nq; i++) srcs[i] = qs[i].src;
  double t0 = tgc_now();
  int runs = 0;
  tgc_status st = ctx->dev->compile(ctx->dev, nq, srcs, bins, lens, &runs);
  ctx->stats.compile_seconds += tgc_now() - t0;
  ctx->stats.compiles += (uint64_t)nq;
  ctx->stats.compiler_runs += (uint64_t)runs;
  for (int i = 0; st == TGC_OK && i < nq; i++) {
    st = load_bin(ctx, &qs[i], bins[i], lens[i]);
    if (st == TGC_OK) tgc_disk_put(ctx->dev->name, qs[i].key, bins[i], lens[i]);
  }
  for (int i = 0; i < nq; i++) free(bins[i]);
  free(bins);
  free(lens);
  free(srcs);
  return st;
}

int64_t tgc_prog_blocks(const tgc_prog_info *in, const int64_t *vars) {
  if (!in->grid_sym || !vars) return in->grid[0];
  int64_t n = tgc_sym_eval(in->grid_sym, vars);
  return n >= 1 && n * in->grid_per <= in->grid[0] ? n * in->grid_per : in->grid[0];
}

tgc_status tgc_programs_get(tgc_ctx *ctx, int n, tgc_uop *const *asts, tgc_program **progs) {
  if (!ctx->progs) ctx->progs = tgc_xcalloc(1, sizeof *ctx->progs);
  struct tgc_progcache *c = ctx->progs;
  const char *ccid = NULL;
  pending *qs = tgc_xcalloc((size_t)n + 1, sizeof *qs);
  int nq = 0;
  tgc_status st = TGC_OK;
  for (int i = 0; i < n; i++) {
    ctx->stats.cache_lookups++;
    tgc_program *p = pc_find(c, asts[i], (tgc_key){0, 0});
    if (p && p->fn) {
      progs[i] = p;
      ctx->stats.cache_mem_hits++;
      continue;
    }
    if (!ccid && !(ccid = ctx->dev->compiler_id(ctx->dev))) {
      st = tgc_last_status();
      break;
    }
    pending q = {.index = i};
    tgc_prog_info info;
    if (!(q.src = render_kernel(ctx, asts[i], ccid, &info, &q.key))) {
      st = tgc_last_status();
      break;
    }
    if (ctx->xcheck_cuda && (st = xcheck_cuda(ctx, asts[i])) != TGC_OK) {
      free(q.src);
      break;
    }
    tgc_program *same = pc_find(c, NULL, q.key);
    if (same && !same->fn) same = NULL;
    for (int k = 0; !same && k < nq; k++)
      if (qs[k].key.lo == q.key.lo && qs[k].key.hi == q.key.hi) same = qs[k].prog;
    if (same) { /* another AST rendered to the same source */
      progs[i] = same;
      if (!p) pc_put(c, asts[i], (tgc_key){0, 0}, same);
      free(q.src);
      ctx->stats.cache_mem_hits++;
      continue;
    }
    /* a program whose compile failed before is reused, not duplicated */
    tgc_program *old = pc_find(c, NULL, q.key);
    q.prog = progs[i] = p ? p : old ? old : pc_new_program(c);
    q.prog->info = info;
    if (!p) pc_put(c, asts[i], (tgc_key){0, 0}, q.prog);
    if (!old) pc_put(c, NULL, q.key, q.prog);
    if ((q.from_disk = try_disk(ctx, &q))) ctx->stats.cache_disk_hits++;
    qs[nq++] = q;
  }
  /* compile what missed both caches, all at once */
  pending *miss = tgc_xcalloc((size_t)nq + 1, sizeof *miss);
  int nm = 0;
  for (int k = 0; k < nq; k++)
    if (!qs[k].from_disk) miss[nm++] = qs[k];
  if (st == TGC_OK) st = compile_pending(ctx, miss, nm);
  for (int k = 0; k < nq; k++) {
    if (st == TGC_OK && ctx->dump_dir) dump_program(ctx, qs[k].prog, qs[k].src);
    free(qs[k].src);
  }
  free(miss);
  free(qs);
  return st;
}
