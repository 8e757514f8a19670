/* kinfo.c - what the runtime and the dump are told about a lowered kernel
 * (tgc_prog_info): its name from its shape ("r_6_v0p1_3_16": a reduce
 * over these axis sizes, v0+1 symbolic), how the CPU splits it across
 * threads (the parallel axis, and the smallest share worth a thread), and
 * its estimated flops and bytes.  Separate from lower.c, which turns the
 * kernel into instructions: this only reads the kernel shape and the
 * instructions once they exist.
 */
#include "tgc_internal.h"

#include <stdio.h>

void tgc_linprog_describe(tgc_linprog *p, const tgc_kshape *ks, bool gpu, const tgc_ctx *ctx, int W) {
  tgc_prog_info *in = &p->info;
  bool red = ks->reduce != NULL;
  size_t len = (size_t)snprintf(in->name, sizeof in->name, "%s", red ? "r" : "E");
  for (int i = 0; i < ks->ndim && len < sizeof in->name - 24; i++) {
    if (!tgc_sym_is(ks->shape[i])) {
      len += (size_t)snprintf(in->name + len, sizeof in->name - len, "_%lld", (long long)ks->shape[i]);
      continue;
    }
    tgc_affine a = tgc_sym_get(ks->shape[i]); /* v0+1 is spelled _v0p1 */
    len += (size_t)snprintf(in->name + len, sizeof in->name - len, "_");
    for (int k = 0; k < TGC_MAX_VARS; k++)
      if (a.c[k]) {
        char m[24] = "";
        if (a.c[k] != 1) snprintf(m, sizeof m, "%s%lld", a.c[k] < 0 ? "m" : "", (long long)(a.c[k] < 0 ? -a.c[k] : a.c[k]));
        len += (size_t)snprintf(in->name + len, sizeof in->name - len, "%sv%d", m, k);
      }
    if (a.b) len += (size_t)snprintf(in->name + len, sizeof in->name - len, "%s%lld", a.b < 0 ? "m" : "p",
                                     (long long)(a.b < 0 ? -a.b : a.b));
  }
  bool par = !gpu && ks->ndim && ks->kind[0] == AXIS_GLOBAL;
  in->par_n = par ? tgc_sym_max(ctx, ks->shape[0]) : 1;
  in->par_sym = par && tgc_sym_is(ks->shape[0]) ? ks->shape[0] : 0;
  double work = 1;
  for (int i = 1; i < ks->ndim; i++) work *= (double)tgc_sym_max(ctx, ks->shape[i]);
  in->par_min_chunk = work >= 16384 ? 1 : (int64_t)(16384 / work);
  double total = work * (double)in->par_n;
  int nalu = 0;
  for (int i = 0; i < p->n; i++) nalu += IS_ALU(p->ins[i].op) && p->ins[i].dtype != TGC_I64;
  in->flops = (double)nalu * total / (double)W; /* vector ALU ops count W lanes once each */
  /* elements each buffer spans, from the view that addresses memory */
  in->bytes = 0;
  for (int l = 0; l < ks->nleaves; l++) {
    const tgc_uop *a = ks->leaves[l];
    if (a->op != TGC_OP_LOAD && a->op != TGC_OP_STORE) continue;
    const tgc_view *v = &ks->sts[l].views[0];
    int64_t hi = v->offset, slot = *(const int *)a->src[0]->arg;
    for (int i = 0; i < v->ndim; i++) hi += (tgc_sym_max(ctx, v->shape[i]) - 1) * (v->strides[i] > 0 ? v->strides[i] : 0);
    if (hi + 1 > in->gnumel[slot]) in->gnumel[slot] = hi + 1;
  }
  for (int i = 0; i < in->nglobals; i++) in->bytes += (double)in->gnumel[i] * tgc_dtypes[in->gdtype[i]].bytes;
  size_t olen = 0;
  in->opts[0] = 0;
  for (int i = 0; i < ks->nopts; i++)
    olen += (size_t)snprintf(in->opts + olen, sizeof in->opts - olen, "%s%s(%d,%d)", i ? " " : "",
                             tgc_opt_name(ks->opts[i].kind), ks->opts[i].axis,
                             ks->opts[i].amount);
}
