/*
 * What the weights loader's fixed costs are made of, on the GPU machine: how long the driver takes to pin
 * (cuMemHostRegister) and unpin host memory by size, page size and concurrency, to allocate pinned memory
 * (cuMemHostAlloc), to create streams and events, and how fast a page-cached file's memory can be pinned and copied
 * from straight (no CPU copy) against read with pread. Prints one table; every number is the median of REPEAT runs.
 *
 *   cc -O2 -Wall -Wextra -o pin_costs bench/pin_costs.c -ldl -pthread
 *   ./pin_costs FILE [REPEAT]      (FILE: a large file, read into the page cache first; 2 GiB of it are used)
 *
 * It loads libcuda.so.1 itself (no torch) and uses device 0's primary context.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef int (*fn_init)(unsigned);
typedef int (*fn_devget)(int *, int);
typedef int (*fn_retain)(void **, int);
typedef int (*fn_setctx)(void *);
typedef int (*fn_reg)(void *, size_t, unsigned);
typedef int (*fn_unreg)(void *);
typedef int (*fn_halloc)(void **, size_t, unsigned);
typedef int (*fn_hfree)(void *);
typedef int (*fn_malloc)(uint64_t *, size_t);
typedef int (*fn_stream)(void **, unsigned);
typedef int (*fn_sdestroy)(void *);
typedef int (*fn_event)(void **, unsigned);
typedef int (*fn_edestroy)(void *);
typedef int (*fn_copy)(uint64_t, const void *, size_t, void *);
typedef int (*fn_ssync)(void *);

static fn_reg reg;
static fn_unreg unreg;
static fn_halloc halloc;
static fn_hfree hfree;
static fn_stream stream_create;
static fn_sdestroy stream_destroy;
static fn_event event_create;
static fn_edestroy event_destroy;
static fn_copy copy;
static fn_ssync ssync;
static fn_setctx setctx;
static void *ctx;
static int repeat = 5;

#define MIB (1024L * 1024)
#define CHECK(x)                                                                   \
	do {                                                                           \
		int rc_ = (x);                                                             \
		if (rc_) {                                                                 \
			fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #x, rc_); \
			exit(1);                                                               \
		}                                                                          \
	} while (0)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void row(const char *what, double seconds, double bytes)
{
	if (bytes > 0)
		printf("| %-58s | %9.3f | %8.2f |\n", what, seconds * 1e3, bytes / seconds / 1e9);
	else
		printf("| %-58s | %9.3f | %8s |\n", what, seconds * 1e3, "-");
	fflush(stdout);
}

static char *anon(size_t bytes, int huge)
{
	size_t span = bytes + 2 * MIB;
	char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	char *a = (char *)(((uintptr_t)m + 2 * MIB - 1) & ~(uintptr_t)(2 * MIB - 1));
	madvise(a, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	madvise(a, bytes, 23 /* MADV_POPULATE_WRITE */);
	return a;
}

/* Pin `count` ranges of `bytes` one after another (serial) and unpin them; median per load of all count pins. */
static void pin_serial(const char *label, size_t bytes, int count, int huge)
{
	char *a = anon(bytes * (size_t)count, huge);
	double p[64], u[64];
	for (int r = 0; r < repeat; r++) {
		double t = now();
		for (int i = 0; i < count; i++)
			CHECK(reg(a + (size_t)i * bytes, bytes, 1));
		p[r] = now() - t;
		t = now();
		for (int i = 0; i < count; i++)
			CHECK(unreg(a + (size_t)i * bytes));
		u[r] = now() - t;
	}
	char what[128];
	snprintf(what, sizeof what, "pin %s %d x %zu MiB, serial", label, count, bytes / MIB);
	row(what, median(p, repeat), (double)bytes * count);
	snprintf(what, sizeof what, "  unpin them");
	row(what, median(u, repeat), 0);
}

struct pin_arg {
	char *a;
	size_t bytes;
};

static void *pin_one(void *arg)
{
	struct pin_arg *p = arg;
	CHECK(setctx(ctx));
	CHECK(reg(p->a, p->bytes, 1));
	return NULL;
}

static void pin_threads(const char *label, size_t bytes, int count, int huge)
{
	char *a = anon(bytes * (size_t)count, huge);
	double p[64];
	for (int r = 0; r < repeat; r++) {
		pthread_t th[64];
		struct pin_arg args[64];
		double t = now();
		for (int i = 0; i < count; i++) {
			args[i] = (struct pin_arg){ a + (size_t)i * bytes, bytes };
			pthread_create(&th[i], NULL, pin_one, &args[i]);
		}
		for (int i = 0; i < count; i++)
			pthread_join(th[i], NULL);
		p[r] = now() - t;
		for (int i = 0; i < count; i++)
			CHECK(unreg(a + (size_t)i * bytes));
	}
	char what[128];
	snprintf(what, sizeof what, "pin %s %d x %zu MiB, a thread each", label, count, bytes / MIB);
	row(what, median(p, repeat), (double)bytes * count);
}

struct fresh_arg {
	size_t bytes;
	int huge;
	char *a;
};

static void *fresh_one(void *arg)
{
	struct fresh_arg *f = arg;
	CHECK(setctx(ctx));
	f->a = anon(f->bytes, f->huge);
	CHECK(reg(f->a, f->bytes, 1));
	return NULL;
}

/* What a load pays: fresh memory mapped, faulted in and pinned by a thread per lane; then unpinned and unmapped. */
static void fresh_pins(size_t bytes, int count, int huge)
{
	double p[64], u[64];
	for (int r = 0; r < repeat; r++) {
		pthread_t th[64];
		struct fresh_arg args[64];
		double t = now();
		for (int i = 0; i < count; i++) {
			args[i] = (struct fresh_arg){ bytes, huge, NULL };
			pthread_create(&th[i], NULL, fresh_one, &args[i]);
		}
		for (int i = 0; i < count; i++)
			pthread_join(th[i], NULL);
		p[r] = now() - t;
		t = now();
		for (int i = 0; i < count; i++) {
			CHECK(unreg(args[i].a));
			munmap(args[i].a, bytes); /* the aligned part; the rest of the span is left (a few MiB a run) */
		}
		u[r] = now() - t;
	}
	char what[128];
	snprintf(what, sizeof what, "fresh %s %d x %zu MiB: map, fault in, pin, a thread each", huge ? "THP" : "4K",
	         count, bytes / MIB);
	row(what, median(p, repeat), (double)bytes * count);
	row("  unpin and unmap them", median(u, repeat), 0);
}

struct mapped_reader {
	const char *map;
	char *buf;
	size_t chunk;
	size_t start, end;
};

static void *map_read_part(void *arg)
{
	struct mapped_reader *r = arg;
	for (size_t at = r->start; at < r->end; at += r->chunk) {
		size_t n = r->end - at < r->chunk ? r->end - at : r->chunk;
		madvise((void *)(r->map + at), n, 22 /* MADV_POPULATE_READ */);
		memcpy(r->buf, r->map + at, n);
	}
	return NULL;
}

/* The page cache read through a fresh mapping each run: each thread populates (MADV_POPULATE_READ) and copies its
 * chunks; the mapping made and unmapped inside the time. */
static void fresh_mapping_read(int fd, size_t size, int threads, int huge)
{
	double v[64];
	struct mapped_reader rs[64];
	for (int i = 0; i < threads; i++)
		rs[i] = (struct mapped_reader){ NULL, anon(4 * MIB, 1), 4 * MIB, size / (size_t)threads * (size_t)i,
			                            i == threads - 1 ? size : size / (size_t)threads * (size_t)(i + 1) };
	for (int r = 0; r < repeat; r++) {
		pthread_t th[64];
		double t = now();
		char *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		madvise(m, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		for (int i = 0; i < threads; i++) {
			rs[i].map = m;
			pthread_create(&th[i], NULL, map_read_part, &rs[i]);
		}
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		munmap(m, size);
		v[r] = now() - t;
	}
	char what[128];
	snprintf(what, sizeof what, "page cache, %d threads, fresh mapping (%s), populate + memcpy", threads,
	         huge ? "huge" : "nohuge");
	row(what, median(v, repeat), (double)size);
}

static void page_cache_read(int fd, size_t size, int threads, const char *map, const char *label);

struct dma_arg {
	uint64_t dev;
	char *host;
	size_t bytes, chunk;
	int streams;
	volatile int *stop;
	double seconds, moved;
};

/* Copies `bytes` of pinned host memory to the GPU in `chunk` copies over `streams` streams, again and again until
 * *stop (or once, where stop is NULL); the rate it moved at. */
static void *dma_loop(void *arg)
{
	struct dma_arg *a = arg;
	CHECK(setctx(ctx));
	void *st[32];
	for (int i = 0; i < a->streams; i++)
		CHECK(stream_create(&st[i], 1));
	double t = now();
	a->moved = 0;
	do {
		int k = 0;
		for (size_t at = 0; at < a->bytes; at += a->chunk, k++)
			CHECK(copy(a->dev + at, a->host + at, a->chunk, st[k % a->streams]));
		for (int i = 0; i < a->streams; i++)
			CHECK(ssync(st[i]));
		a->moved += (double)a->bytes;
	} while (a->stop && !*a->stop);
	a->seconds = now() - t;
	for (int i = 0; i < a->streams; i++)
		stream_destroy(st[i]);
	return NULL;
}

/* The link by copy size, and the page cache read with and without the link busy at the same time (is reading
 * bound by the memory both use?). */
static void contention(int fd, size_t size, uint64_t dev)
{
	size_t bytes = 1024 * MIB;
	char *host = anon(bytes, 1);
	CHECK(reg(host, bytes, 1));
	for (size_t chunk = 1 * MIB; chunk <= 16 * MIB; chunk *= 2) {
		double v[64];
		for (int r = 0; r < repeat; r++) {
			struct dma_arg a = { dev, host, bytes, chunk, 10, NULL, 0, 0 };
			dma_loop(&a);
			v[r] = a.seconds;
		}
		char what[128];
		snprintf(what, sizeof what, "the link, %zu MiB copies on 10 streams", chunk / MIB);
		row(what, median(v, repeat), (double)bytes);
	}
	for (int threads = 10; threads <= 14; threads += 4) {
		page_cache_read(fd, size, threads, NULL, "pread 4 MiB, link idle");
		volatile int stop = 0;
		struct dma_arg a = { dev, host, bytes, 4 * MIB, 10, &stop, 0, 0 };
		pthread_t th;
		pthread_create(&th, NULL, dma_loop, &a);
		page_cache_read(fd, size, threads, NULL, "pread 4 MiB, link busy");
		stop = 1;
		pthread_join(th, NULL);
		row("  the link meanwhile (4 MiB copies, 10 streams)", a.seconds, a.moved);
	}
	CHECK(unreg(host));
}

typedef int (*fn_ctxcreate)(void **, unsigned, int);
static fn_ctxcreate ctx_create;
static int device;

struct reg_arg {
	char *map;
	size_t size, window;
	int own_context; /* register from a context of its own instead of the primary one */
	volatile int *stop, ready;
	double seconds, pinned;
};

/* Registers and unregisters `window`-sized pieces of a page-cached file's mapping, over and over, until *stop or for
 * at most 2 s (on the H100, in the copies' own context, the copies beside it did not finish at all while it ran). */
static void *register_loop(void *arg)
{
	struct reg_arg *a = arg;
	void *own = NULL;
	if (a->own_context)
		CHECK(ctx_create(&own, 0, device));
	else
		CHECK(setctx(ctx));
	a->ready = 1;
	double t = now();
	a->pinned = 0;
	while (!*a->stop && now() - t < 2.0) {
		for (size_t at = 0; at < a->size && !*a->stop && now() - t < 2.0; at += a->window) {
			CHECK(reg(a->map + at, a->window, 1 | 8));
			CHECK(unreg(a->map + at));
			a->pinned += (double)a->window;
		}
	}
	a->seconds = now() - t;
	return NULL;
}

/* The link (4 MiB copies, 10 streams) alone, and while another thread registers a page-cached file's memory in the
 * same context or in a context of its own: do registrations hold up the copies' issue? */
static void registration_beside_copies(int fd, size_t size, uint64_t dev)
{
	size_t bytes = 1024 * MIB;
	char *host = anon(bytes, 1);
	CHECK(reg(host, bytes, 1));
	char *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	madvise(m, size, 22);
	for (int mode = 0; mode < 3; mode++) {
		double v[64], rate[64];
		for (int r = 0; r < repeat; r++) {
			volatile int stop = 0;
			struct reg_arg ra = { m, size, 64 * MIB, mode == 2, &stop, 0, 0, 0 };
			pthread_t th;
			if (mode) {
				pthread_create(&th, NULL, register_loop, &ra);
				while (!ra.ready)
					usleep(100);
			}
			struct dma_arg a = { dev, host, bytes, 4 * MIB, 10, NULL, 0, 0 };
			dma_loop(&a);
			dma_loop(&a);
			stop = 1;
			if (mode) {
				pthread_join(th, NULL);
				rate[r] = ra.pinned / ra.seconds / 1e9;
			}
			v[r] = a.seconds;
		}
		const char *what[] = { "the link alone (4 MiB copies, 10 streams)",
			                   "the link, registrations beside it in the same context",
			                   "the link, registrations beside it in a context of their own" };
		if (median(v, repeat) >= 1.9) {
			char line[160];
			snprintf(line, sizeof line, "%s: starved (the copies waited for the registrations to end)", what[mode]);
			row(line, median(v, repeat), 0);
		} else
			row(what[mode], median(v, repeat), (double)bytes);
		if (mode) {
			char line[128];
			snprintf(line, sizeof line, "  registering meanwhile: %.1f GB/s", median(rate, repeat));
			row(line, 0, 0);
		}
	}
	munmap(m, size);
	CHECK(unreg(host));
}

static void host_alloc(size_t bytes, int count)
{
	double p[64], f[64];
	void *h[64];
	for (int r = 0; r < repeat; r++) {
		double t = now();
		for (int i = 0; i < count; i++)
			CHECK(halloc(&h[i], bytes, 1));
		p[r] = now() - t;
		t = now();
		for (int i = 0; i < count; i++)
			CHECK(hfree(h[i]));
		f[r] = now() - t;
	}
	char what[128];
	snprintf(what, sizeof what, "cuMemHostAlloc %d x %zu MiB", count, bytes / MIB);
	row(what, median(p, repeat), (double)bytes * count);
	row("  cuMemFreeHost them", median(f, repeat), 0);
}

static void objects(void)
{
	double s[64], e[64];
	for (int r = 0; r < repeat; r++) {
		void *st[10], *ev[20];
		double t = now();
		for (int i = 0; i < 10; i++)
			CHECK(stream_create(&st[i], 1));
		s[r] = now() - t;
		t = now();
		for (int i = 0; i < 20; i++)
			CHECK(event_create(&ev[i], 2));
		e[r] = now() - t;
		for (int i = 0; i < 20; i++)
			event_destroy(ev[i]);
		for (int i = 0; i < 10; i++)
			stream_destroy(st[i]);
	}
	row("create 10 streams", median(s, repeat), 0);
	row("create 20 events", median(e, repeat), 0);
}

struct reader {
	int fd;
	char *buf;
	size_t chunk;
	off_t start, end;
	const char *map; /* memcpy from it instead of pread */
};

static void *read_part(void *arg)
{
	struct reader *r = arg;
	for (off_t at = r->start; at < r->end; at += (off_t)r->chunk) {
		size_t n = (size_t)(r->end - at) < r->chunk ? (size_t)(r->end - at) : r->chunk;
		if (r->map)
			memcpy(r->buf, r->map + at, n);
		else if (pread(r->fd, r->buf, n, at) != (ssize_t)n) {
			perror("pread");
			exit(1);
		}
	}
	return NULL;
}

/* The page cache read by `threads` threads, with pread or memcpy from a mapping (populated first, not timed). */
static void page_cache_read(int fd, size_t size, int threads, const char *map, const char *label)
{
	double v[64];
	struct reader rs[64];
	for (int i = 0; i < threads; i++)
		rs[i] = (struct reader){ fd, anon(4 * MIB, 1), 4 * MIB, (off_t)(size / threads * i),
			                     (off_t)(i == threads - 1 ? size : size / threads * (i + 1)), map };
	for (int r = 0; r < repeat; r++) {
		pthread_t th[64];
		double t = now();
		for (int i = 0; i < threads; i++)
			pthread_create(&th[i], NULL, read_part, &rs[i]);
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		v[r] = now() - t;
	}
	char what[128];
	snprintf(what, sizeof what, "page cache, %d threads, %s", threads, label);
	row(what, median(v, repeat), (double)size);
}

/* A page-cached file's mapping pinned (read-only) in windows of `window` bytes, then copied to the GPU from it
 * straight: the pin, the copy and the unpin timed apart. */
static void mapped_file(int fd, size_t size, size_t window, int huge, uint64_t dev)
{
	char *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		perror("mmap file");
		exit(1);
	}
	madvise(m, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	madvise(m, size, 22 /* MADV_POPULATE_READ */);
	void *s;
	CHECK(stream_create(&s, 1));
	double p[64], c[64], u[64];
	for (int r = 0; r < repeat; r++) {
		double t = now();
		for (size_t at = 0; at < size; at += window)
			CHECK(reg(m + at, window, 1 | 8 /* PORTABLE | READ_ONLY */));
		p[r] = now() - t;
		t = now();
		for (size_t at = 0; at < size; at += 64 * MIB)
			CHECK(copy(dev + (at % (1024 * MIB)), m + at, 64 * MIB, s));
		CHECK(ssync(s));
		c[r] = now() - t;
		t = now();
		for (size_t at = 0; at < size; at += window)
			CHECK(unreg(m + at));
		u[r] = now() - t;
	}
	char what[128];
	snprintf(what, sizeof what, "pin file mapping (%s advice), %zu MiB windows", huge ? "huge" : "nohuge", window / MIB);
	row(what, median(p, repeat), (double)size);
	row("  copy to the GPU straight from it", median(c, repeat), (double)size);
	row("  unpin it", median(u, repeat), 0);
	stream_destroy(s);
	munmap(m, size);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE [REPEAT]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		repeat = atoi(argv[2]) > 0 && atoi(argv[2]) <= 64 ? atoi(argv[2]) : 5;
	void *lib = dlopen("libcuda.so.1", RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "no libcuda: %s\n", dlerror());
		return 1;
	}
#define SYM(var, type, name) var = (type)dlsym(lib, name)
	fn_init init;
	fn_devget devget;
	fn_retain retain;
	fn_malloc dmalloc;
	SYM(init, fn_init, "cuInit");
	SYM(devget, fn_devget, "cuDeviceGet");
	SYM(retain, fn_retain, "cuDevicePrimaryCtxRetain");
	SYM(setctx, fn_setctx, "cuCtxSetCurrent");
	SYM(reg, fn_reg, "cuMemHostRegister_v2");
	SYM(unreg, fn_unreg, "cuMemHostUnregister");
	SYM(halloc, fn_halloc, "cuMemHostAlloc");
	SYM(hfree, fn_hfree, "cuMemFreeHost");
	SYM(dmalloc, fn_malloc, "cuMemAlloc_v2");
	SYM(stream_create, fn_stream, "cuStreamCreate");
	SYM(stream_destroy, fn_sdestroy, "cuStreamDestroy_v2");
	SYM(event_create, fn_event, "cuEventCreate");
	SYM(event_destroy, fn_edestroy, "cuEventDestroy_v2");
	SYM(copy, fn_copy, "cuMemcpyHtoDAsync_v2");
	SYM(ssync, fn_ssync, "cuStreamSynchronize");
	SYM(ctx_create, fn_ctxcreate, "cuCtxCreate_v2");
	CHECK(init(0));
	CHECK(devget(&device, 0));
	CHECK(retain(&ctx, device));
	CHECK(setctx(ctx));

	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		perror(argv[1]);
		return 1;
	}
	size_t size = (size_t)st.st_size < 2048 * MIB ? (size_t)st.st_size & ~(size_t)(64 * MIB - 1) : 2048 * MIB;
	uint64_t d;
	CHECK(dmalloc(&d, 1024 * MIB));

	printf("pin_costs: %s, %zu MiB of it, median of %d\n\n", argv[1], size / MIB, repeat);
	printf("| %-58s | %9s | %8s |\n| --- | ---: | ---: |\n", "what", "ms", "GB/s");
	objects();
	if (getenv("PIN_COSTS_REGISTRATION")) {
		registration_beside_copies(fd, size, d);
		return 0;
	}
	if (getenv("PIN_COSTS_CONTENTION")) {
		contention(fd, size, d);
		return 0;
	}
	if (getenv("PIN_COSTS_QUICK")) {
		fresh_pins(8 * MIB, 10, 1);
		fresh_pins(8 * MIB, 10, 0);
		fresh_pins(4 * MIB, 10, 1);
		pin_threads("THP", 8 * MIB, 10, 1);
		for (int t = 10; t <= 16; t += 2)
			page_cache_read(fd, size, t, NULL, "pread 4 MiB");
		for (int t = 10; t <= 16; t += 2)
			fresh_mapping_read(fd, size, t, 0);
		fresh_mapping_read(fd, size, 10, 1);
		char *q = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		madvise(q, size, 22);
		page_cache_read(fd, size, 10, q, "memcpy from a populated mapping");
		munmap(q, size);
		return 0;
	}
	for (int huge = 1; huge >= 0; huge--) {
		const char *label = huge ? "THP" : "4K";
		pin_serial(label, 1 * MIB, 1, huge);
		pin_serial(label, 4 * MIB, 1, huge);
		pin_serial(label, 8 * MIB, 1, huge);
		pin_serial(label, 80 * MIB, 1, huge);
		pin_serial(label, 8 * MIB, 10, huge);
		pin_serial(label, 4 * MIB, 20, huge);
		pin_threads(label, 8 * MIB, 10, huge);
	}
	host_alloc(8 * MIB, 10);
	host_alloc(80 * MIB, 1);
	for (int t = 8; t <= 16; t += 2)
		page_cache_read(fd, size, t, NULL, "pread 4 MiB");
	char *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	madvise(m, size, 22);
	page_cache_read(fd, size, 10, m, "memcpy from a populated mapping");
	page_cache_read(fd, size, 16, m, "memcpy from a populated mapping");
	munmap(m, size);
	mapped_file(fd, size, 64 * MIB, 0, d);
	mapped_file(fd, size, 64 * MIB, 1, d);
	mapped_file(fd, size, 1024 * MIB, 1, d);
	return 0;
}
