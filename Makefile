# Makefile - builds libtgc, its tests and benchmarks (GNU make).
#
#   make                       build/libtgc.a, build/libtgc.so and build/tgc-llama
#   make test                  install missing Debian packages (make deps),
#                              build and run the Criterion suite, the
#                              tgc-llama checks (tests/llama-cli.sh), the GPU
#                              code paths on OpenCL (tests/gpu-paths.sh) and
#                              the embedding test (tests/embed/run.sh)
#   make SANITIZE=address,undefined test
#                              the same under ASan and UBSan, built in its
#                              own folder (build/san-address-undefined)
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make bench                 build bench/*.c and run bench/run.sh
#   make deps                  install missing Debian packages (tools/deps.sh)
#   make fuzz                  fuzz the GGUF reader for FUZZ_SECONDS (60) with libFuzzer
#   make compare               build/libtgc-compare.so (libtorch), when libtorch is found
#   make run                   make deps, build, run build/tgc-bench on its default
#   make clean                 remove build/
#
# Every file the build writes lies under $(BUILD).  Objects sit in
# $(B)/obj/<source path>.o beside their -MMD dependency files, so a header
# change rebuilds exactly the objects that include it.  $(B) is $(BUILD) for
# a normal build and $(BUILD)/san-<list> for a sanitizer build, so the two
# never share an object.

VERSION := 0.1.0
SOMAJOR := 0

BUILD ?= build
comma := ,
SANITIZE ?=
ifeq ($(strip $(SANITIZE)),)
  B := $(BUILD)
  SAN_FLAGS :=
  RUN_ENV :=
else
  B := $(BUILD)/san-$(subst $(comma),-,$(strip $(SANITIZE)))
  SAN_FLAGS := -fsanitize=$(strip $(SANITIZE)) -fno-sanitize-recover=all -fno-omit-frame-pointer
  # Caller's own options come last, so they can override ours.
  RUN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1$${ASAN_OPTIONS:+:$$ASAN_OPTIONS} \
             LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp)$${LSAN_OPTIONS:+:$$LSAN_OPTIONS} \
             UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1$${UBSAN_OPTIONS:+:$$UBSAN_OPTIONS}
endif

# CFLAGS and LDFLAGS are the caller's to override; the language level,
# the warnings and the flags the library needs are always added, and
# -Werror comes last so that no CFLAGS can turn it off.
CFLAGS ?= -O2 -g
LDFLAGS ?=
BASE_CFLAGS := -std=c11 -Wall -Wextra -fPIC -pthread -Iinclude
ALL_CFLAGS = $(BASE_CFLAGS) $(SAN_FLAGS) $(CPPFLAGS) $(CFLAGS) -Werror
ALL_LDFLAGS = -pthread $(SAN_FLAGS) $(LDFLAGS)
LIBS := -ldl -lm -pthread
# Benchmarks are compiled for this machine, as the kernels they time are.
BENCH_CFLAGS ?= -march=native

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PUBLIC_HEADERS := include/tgc.h include/tgc_dtypes.def

LIB_SRCS := $(wildcard ops/*.c compiler/*.c runtime/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
# llama/: GGUF, tokenizers and the model, a library of its own on top of
# libtgc (so libtgc does not link PCRE2); llama/main.c is tgc-llama.
LLAMA_SRCS := $(filter-out llama/main.c,$(wildcard llama/*.c))
LLAMA_OBJS := $(LLAMA_SRCS:%.c=$(B)/obj/%.o)
LLAMA_LIB := $(B)/libtgc-llama.a
LLAMA_LIBS := -lpcre2-8
TEST_SRCS := $(wildcard tests/*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(B)/obj/%.o)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(B)/obj/%.o)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(B)/bench/%)
# gpu_check's pieces beside bench/gpu_check.c (not programs of their own).
GPU_CHECK_SRCS := $(wildcard bench/gpu/*.c)
GPU_CHECK_OBJS := $(GPU_CHECK_SRCS:%.c=$(B)/obj/%.o)

STATIC_LIB := $(B)/libtgc.a
SHARED_LIB := $(B)/libtgc.so
TEST_BIN := $(B)/tests/tgc-tests
TEST_JOBS ?= 2
TEST_ARGS ?=

.PHONY: all deps test bench install uninstall clean FORCE
.DELETE_ON_ERROR:

LLAMA_BIN := $(B)/tgc-llama

all: $(STATIC_LIB) $(SHARED_LIB) $(LLAMA_BIN)

# ---- library ---------------------------------------------------------------

$(STATIC_LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# The real file is libtgc.so with soname libtgc.so.0; the libtgc.so.0 link
# lets programs linked against it run with LD_LIBRARY_PATH=$(B).
$(SHARED_LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libtgc.so.$(SOMAJOR) -Wl,-z,defs $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
	ln -sf libtgc.so $(B)/libtgc.so.$(SOMAJOR)

# One rule for every object: library, tests and benchmarks.  Objects also
# depend on $(B)/flags, so changing CFLAGS rebuilds them.
$(B)/obj/%.o: %.c $(B)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(if $(filter bench/%,$<),$(BENCH_CFLAGS)) -MMD -MP -c -o $@ $<

# Rewritten only when the flags differ from last time (see git's GIT-CFLAGS).
FLAGS_TEXT = $(CC) $(ALL_CFLAGS) | $(ALL_LDFLAGS) $(LIBS) | $(BENCH_CFLAGS)
$(B)/flags: FORCE
	@mkdir -p $(@D)
	@echo '$(FLAGS_TEXT)' | cmp -s - $@ || echo '$(FLAGS_TEXT)' > $@

-include $(LIB_OBJS:.o=.d) $(LLAMA_OBJS:.o=.d) $(B)/obj/llama/main.d $(TEST_OBJS:.o=.d) $(BENCH_OBJS:.o=.d) $(GPU_CHECK_OBJS:.o=.d)

# ---- dependencies ----------------------------------------------------------

# Quiet when nothing is missing; installs with apt-get as root, otherwise
# prints the command and fails.
deps:
	@tools/deps.sh

# `make test` checks the packages before compiling anything, also under -j.
ifneq ($(filter test,$(MAKECMDGOALS)),)
$(LIB_OBJS) $(LLAMA_OBJS) $(TEST_OBJS): | deps
endif

# ---- tests -----------------------------------------------------------------

$(LLAMA_LIB): $(LLAMA_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# llama/ needs PCRE2's headers: make sure the packages are there.
$(LLAMA_OBJS) $(B)/obj/llama/main.o: | deps

$(LLAMA_BIN): $(B)/obj/llama/main.o $(LLAMA_LIB) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LLAMA_LIB) $(STATIC_LIB) $(LLAMA_LIBS) $(LIBS)

$(TEST_BIN): $(TEST_OBJS) $(LLAMA_LIB) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $(TEST_OBJS) $(LLAMA_LIB) $(STATIC_LIB) -lcriterion $(LLAMA_LIBS) $(LIBS)

# Under SANITIZE the test processes exit normally (--no-early-exit), so
# LeakSanitizer checks each one and a leak fails the run (otherwise
# Criterion's workers leave without the check).
# The suite gets a fresh kernel cache in $(B)/tests/cache; tests that need
# their own cache directory set TGC_CACHE_DIR themselves.  Then the
# embedding test installs this build into a temporary prefix and builds a
# program against it with pkg-config (under SANITIZE, the sanitized build
# with the program compiled with the same sanitizers).
test: deps $(TEST_BIN) $(LLAMA_BIN) $(B)/tgc-bench
	rm -rf $(B)/tests/cache
	TGC_CACHE_DIR=$(abspath $(B))/tests/cache POCL_CACHE_DIR=$(abspath $(BUILD))/pocl-cache $(RUN_ENV) \
	  $(TEST_BIN) --jobs $(TEST_JOBS) $(if $(strip $(SANITIZE)),--no-early-exit) $(TEST_ARGS)
	$(RUN_ENV) tests/llama-cli.sh $(B)
	$(RUN_ENV) tests/tgc-bench.sh $(B)
	tests/find-libtorch.sh
ifeq ($(strip $(SANITIZE)),)
	POCL_CACHE_DIR=$(abspath $(BUILD))/pocl-cache tests/gpu-paths.sh $(TEST_BIN) $(TEST_JOBS)
endif
	$(RUN_ENV) MAKE='$(MAKE)' SANITIZE='$(SANITIZE)' EMBED_CFLAGS='$(SAN_FLAGS)' \
	  tests/embed/run.sh

# ---- benchmarks ------------------------------------------------------------

# Kept, not deleted as intermediates, so a second `make bench` builds nothing.
.SECONDARY: $(BENCH_OBJS) $(GPU_CHECK_OBJS)
$(B)/bench/%: $(B)/obj/bench/%.o $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(STATIC_LIB) $(LIBS)

# The LLaMA benchmark links llama/ as well.
$(B)/bench/llama: $(B)/obj/bench/llama.o $(LLAMA_LIB) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LLAMA_LIB) $(STATIC_LIB) $(LLAMA_LIBS) $(LIBS)

# gpu_check also links its op checks and CUDA driver code from bench/gpu/.
$(B)/bench/gpu_check: $(GPU_CHECK_OBJS)

# bench/run.sh finds the binaries in $TGC_BENCH_DIR (an absolute path).
bench: $(BENCH_BINS)
	@if [ -f bench/run.sh ]; then \
	  echo "TGC_BENCH_DIR=$(abspath $(B))/bench bench/run.sh"; \
	  TGC_BENCH_DIR=$(abspath $(B))/bench $(RUN_ENV) bash bench/run.sh; \
	else \
	  echo "bench: no bench/run.sh; built: $(or $(BENCH_BINS),nothing)"; \
	fi

# gpu_check is built with the other benchmarks (make bench) but without
# -march=native: it is built here and run on a GPU machine whose CPU may
# lack this one's instructions.  `private` keeps the override from reaching
# $(B)/flags, which every object shares.  The same for its pieces in
# bench/gpu/.
$(B)/obj/bench/gpu_check.o $(GPU_CHECK_OBJS): private BENCH_CFLAGS :=
# jit too: gpu-check.sh runs it on the GPU machine (its kernels are
# compiled by tgc at run time, for the machine they run on).
$(B)/obj/bench/jit.o: private BENCH_CFLAGS :=

# On a GPU machine (bench/gpu-check.sh has the details): the tree is built
# elsewhere and copied with $(B), and the packages tgc builds with (xxhash
# headers) are missing there, so make rebuilds the program only where it
# can build tgc; otherwise the script runs the copied binary, or links one
# from bench/gpu_check.c, bench/gpu/*.c and $(B)/libtgc.a with gcc alone
# (the same for the JIT benchmark, $(B)/bench/jit, from bench/jit.c).
# (A '#' inside a function call is literal from make 4.3 on and starts a
# comment before it; through a variable it works in both.)
hash := \#
ifneq ($(filter gpu-check,$(MAKECMDGOALS)),)
  GPU_CHECK_CAN_BUILD := $(shell echo '$(hash)include <xxhash.h>' | $(CC) -E -x c - >/dev/null 2>&1 && echo yes)
endif
.PHONY: gpu-check
gpu-check: $(if $(GPU_CHECK_CAN_BUILD),$(B)/bench/gpu_check $(B)/bench/jit $(B)/bench/llama)
	TGC_GPU_CHECK_BIN=$(abspath $(B))/bench/gpu_check TGC_GPU_CHECK_JIT_BIN=$(abspath $(B))/bench/jit \
	  TGC_GPU_CHECK_LLAMA_BIN=$(abspath $(B))/bench/llama \
	  bash bench/gpu-check.sh

# ---- install ---------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/libtgc.a
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/libtgc.so.$(VERSION)
	ln -sf libtgc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libtgc.so.$(SOMAJOR)
	ln -sf libtgc.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libtgc.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    tgc.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tgc.pc

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/,$(notdir $(PUBLIC_HEADERS)))
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,libtgc.a libtgc.so libtgc.so.$(SOMAJOR) \
	        libtgc.so.$(VERSION) pkgconfig/tgc.pc)

clean:
	rm -rf $(BUILD)

# ---- fuzzing ---------------------------------------------------------------

# `make fuzz` fuzzes the GGUF reader with libFuzzer for FUZZ_SECONDS: it
# makes sure clang and its fuzzer runtime are installed (tools/deps.sh),
# builds tests/fuzz/gguf_fuzz.c with llama/gguf.c and ops/util.c (all the
# reader needs) under ASan and UBSan, writes a seed corpus of valid files
# with the writer (tests/fuzz/make-seeds.c, linked to this build's
# libraries), and runs.  New inputs collect in $(FUZZ_DIR)/corpus and carry
# over to the next run; a crash, leak or sanitizer report is saved as
# $(FUZZ_DIR)/crash-* and fails the target.  Replay one with
#   $(FUZZ_DIR)/gguf_fuzz $(FUZZ_DIR)/crash-<hash>
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=c11 -Wall -Wextra -Werror -g -O1 -Iinclude \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRCS := tests/fuzz/gguf_fuzz.c llama/gguf.c ops/util.c

.PHONY: fuzz fuzz-deps
fuzz-deps:
	@tools/deps.sh clang libclang-rt-dev
	@$(FUZZ_CC) --version >/dev/null || { echo "fuzz: $(FUZZ_CC) does not run" >&2; exit 1; }

ifneq ($(filter fuzz,$(MAKECMDGOALS)),)
$(LIB_OBJS) $(LLAMA_OBJS): | deps
endif

$(FUZZ_DIR)/gguf_fuzz: $(FUZZ_SRCS) llama/gguf.h include/tgc.h include/tgc_internal.h | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS) -lm

$(FUZZ_DIR)/make-seeds: tests/fuzz/make-seeds.c llama/gguf.h $(LLAMA_LIB) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LLAMA_LIB) $(STATIC_LIB) $(LLAMA_LIBS) $(LIBS)

fuzz: $(FUZZ_DIR)/gguf_fuzz $(FUZZ_DIR)/make-seeds
	rm -rf $(FUZZ_DIR)/seeds
	mkdir -p $(FUZZ_DIR)/seeds $(FUZZ_DIR)/corpus
	$(FUZZ_DIR)/make-seeds $(FUZZ_DIR)/seeds
	$(FUZZ_DIR)/gguf_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	  -dict=tests/fuzz/gguf.dict -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds

# ---- tgc-bench -------------------------------------------------------------

# build/tgc-bench: LLaMA decode with tgc next to libtorch (bench/tgc-bench/,
# docs/benchmarking.md).  `make run` builds it and runs the default job
# (small-512 on the best device, every framework available).  The binary
# carries all of libtgc (--whole-archive) and exports its symbols
# (-rdynamic), so the libtorch comparison module it opens with dlopen
# (build/libtgc-compare.so) finds tgc's functions in it: one copy of tgc's
# state, whichever way the module was linked.  machine.o records the git
# commit it was built from; $(B)/tgc-bench-commit changes (and rebuilds
# it) when the commit or the tree's cleanliness does.  On CUDA its device
# copy baseline is gpu_check's (bench/gpu/cudadrv.c, the driver opened with
# dlopen, so the binary still runs where CUDA is absent).
TB_SRCS := $(wildcard bench/tgc-bench/*.c)
TB_OBJS := $(TB_SRCS:%.c=$(B)/obj/%.o) $(B)/obj/bench/gpu/cudadrv.o
TB_BIN := $(B)/tgc-bench
TB_GIT = $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
TB_DIRTY = $(shell test -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" && echo 1 || echo 0)

-include $(TB_OBJS:.o=.d)

$(B)/tgc-bench-commit: FORCE
	@mkdir -p $(@D)
	@echo '$(TB_GIT) $(TB_DIRTY)' | cmp -s - $@ || echo '$(TB_GIT) $(TB_DIRTY)' > $@

$(B)/obj/bench/tgc-bench/machine.o: $(B)/tgc-bench-commit
$(B)/obj/bench/tgc-bench/machine.o: private CPPFLAGS += -DTGC_GIT_COMMIT='"$(TB_GIT)"' -DTGC_GIT_DIRTY=$(TB_DIRTY)
$(TB_OBJS): | deps

$(TB_BIN): $(TB_OBJS) $(LLAMA_LIB) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -rdynamic -o $@ $(TB_OBJS) $(LLAMA_LIB) -Wl,--whole-archive $(STATIC_LIB) \
	  -Wl,--no-whole-archive $(LLAMA_LIBS) $(LIBS)

.PHONY: run
run: deps $(TB_BIN)
	$(RUN_ENV) $(TB_BIN)

# ---- compare: the same graphs run by libtorch ------------------------------

# `make compare` builds $(B)/libtgc-compare.so from compare/*.cpp: the
# comparison module, C++ behind compare/tgc_compare.h, that tgc-bench and
# the tests open with dlopen (docs/compare.md); libtgc never links libtorch.
# libtorch is LIBTORCH=<folder> when given (an unpacked libtorch), else
# Debian's libtorch-dev, else the one bundled with Python's torch
# (compare/find-libtorch.sh).  Where there is none, `make compare` says so
# and builds nothing, and the suite skips its compare tests.  COMPARE=0
# turns the lookup off; sanitizer builds leave it off unless COMPARE=1
# (libtorch is not instrumented, and LeakSanitizer would report its
# process-lifetime allocations).
#
# The lookup's answer is $(B)/compare/torch.mk, included below and
# rewritten only when it changes.  For `make test` and `make compare` the
# packages are installed first (deps; also for `make run`), and make reads itself again when
# torch.mk changes, so on a fresh machine the libtorch that deps has just
# installed is found in the same run.
COMPARE ?= $(if $(strip $(SANITIZE)),0,1)
LIBTORCH ?=
CXXFLAGS ?= -O2
COMPARE_SRCS := $(wildcard compare/*.cpp)
COMPARE_OBJS := $(COMPARE_SRCS:%.cpp=$(B)/obj/%.o)
TORCH_MK := $(B)/compare/torch.mk

ifneq ($(COMPARE),0)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(TORCH_MK): compare/find-libtorch.sh FORCE | $(if $(filter test compare run,$(MAKECMDGOALS)),deps)
	@mkdir -p $(@D)
	@compare/find-libtorch.sh '$(LIBTORCH)' > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; fi
-include $(TORCH_MK)
endif
endif

COMPARE_LIB := $(if $(TORCH_FROM),$(B)/libtgc-compare.so)
# -Werror last, as for C; libtorch's headers are -isystem, so their own
# warnings are not ours.  Only the C interface is exported.
ALL_CXXFLAGS = -std=c++17 -fPIC -fvisibility=hidden -fvisibility-inlines-hidden -Wall -Wextra \
               -Iinclude -Icompare $(TORCH_CXXFLAGS) $(SAN_FLAGS) $(CPPFLAGS) $(CXXFLAGS) -Werror

.PHONY: compare
ifneq ($(COMPARE_LIB),)
compare: $(COMPARE_LIB)
	@echo "compare: $(COMPARE_LIB) built with libtorch from $(TORCH_FROM)"
else
compare:
	@echo "compare: $(if $(filter 0,$(COMPARE)),COMPARE=0,$(or $(TORCH_WHY),libtorch not found)); $(B)/libtgc-compare.so not built"
endif

$(B)/obj/compare/%.o: compare/%.cpp $(B)/compare/cxxflags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -MMD -MP -c -o $@ $<

# Its own hidden copy of the few libtgc functions it calls (symbolic sizes):
# the programs that open it link libtgc statically and export nothing.
$(COMPARE_LIB): $(COMPARE_OBJS) $(STATIC_LIB)
	$(CXX) -shared -Wl,-z,defs $(ALL_LDFLAGS) -o $@ $(COMPARE_OBJS) -Wl,--exclude-libs,ALL $(STATIC_LIB) \
	  $(TORCH_LIBS) $(LIBS)

CXXFLAGS_TEXT = $(CXX) $(ALL_CXXFLAGS) | $(TORCH_LIBS)
$(B)/compare/cxxflags: FORCE
	@mkdir -p $(@D)
	@echo '$(CXXFLAGS_TEXT)' | cmp -s - $@ || echo '$(CXXFLAGS_TEXT)' > $@

-include $(COMPARE_OBJS:.o=.d)

# tests/test_compare.c runs its tests where the library is built
# (TGC_HAVE_COMPARE) and skips them, saying why, where it is not; the stamp
# recompiles it when that changes.  `make test` builds the library first.
COMPARE_DEFS := $(if $(COMPARE_LIB),-DTGC_HAVE_COMPARE=1)
$(B)/compare/defs: FORCE
	@mkdir -p $(@D)
	@echo '$(COMPARE_DEFS)' | cmp -s - $@ || echo '$(COMPARE_DEFS)' > $@
$(B)/obj/tests/test_compare.o: $(B)/compare/defs
$(B)/obj/tests/test_compare.o: private CPPFLAGS += $(COMPARE_DEFS)
test: $(COMPARE_LIB)
# `make run` compares with libtorch too, where it is found.
run: $(COMPARE_LIB)
