/*
 * The lanes load loop in C: the same work as _pipelines.run_lanes, without Python's lock between the threads.
 *
 * Why: in Python every pread, copy and event call releases and retakes the GIL, and with many lanes the handoffs
 * cost as much as small windows move (docs/decisions/0006-weights-lanes.md). Here each
 * lane is a pthread that takes the next window (an atomic counter), waits for its slot's previous copies (the
 * slot's event), preads the window into the slot and issues the window's copies and the slot's event on its own
 * stream. The slots are pinned ahead of the run by pin_slots (a few threads, every lane's first slot before any
 * second one), which stasis_lanes_pin_start starts while Python still checks the load. A lane starts once its first
 * slot is pinned and takes up its other slots as they get pinned: faulting fresh memory in is most of what pinning
 * costs (bench/pin_costs.c measures it), so the first slots are there sooner. Without pinning ahead each lane pins
 * its own when it starts; each lane unpins its own once its copies are done.
 * The windows themselves are cut here from the copies and the file ranges to read (plan_windows): in Python the
 * 1,500 windows of a 6.4 GB load cost milliseconds before the first read. Python maps the slots' memory, makes the
 * streams and events, and releases all of it after. Built by
 * scripts/python-env.sh (cc -O2 -shared -fPIC -pthread); where it is not built the Python loop runs instead.
 *
 * The CUDA calls come as function pointers from the library the process already uses: the runtime torch loaded
 * (api 0: cudaMemcpyAsync, cudaEventRecord, cudaEventSynchronize, cudaSetDevice, cudaHostRegister,
 * cudaHostUnregister, cudaStreamSynchronize) or the driver (api 1: the cu* equivalents); api 2 copies with
 * memcpy (host targets: the tests).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef int (*copy_rt_fn)(void *dst, const void *src, size_t n, int kind, void *stream);
typedef int (*copy_drv_fn)(uint64_t dst, const void *src, size_t n, void *stream);
typedef int (*record_fn)(void *event, void *stream);
typedef int (*sync_fn)(void *event);
typedef int (*init_rt_fn)(int device);
typedef int (*init_drv_fn)(void *ctx);
typedef int (*register_fn)(void *address, size_t size, unsigned flags); /* cudaHostRegister, cuMemHostRegister_v2 */
typedef int (*unregister_fn)(void *address);                              /* cudaHostUnregister, cuMemHostUnregister */

enum { API_RUNTIME = 0, API_DRIVER = 1, API_HOST = 2 };
enum { MAX_LANES = 256, MAX_SLOTS = 64 };
enum { ERR_READ = 1, ERR_EOF = 2, ERR_COPY = 3, ERR_RECORD = 4, ERR_SYNC = 5, ERR_INIT = 6, ERR_THREAD = 7, ERR_PIN = 8,
       ERR_UNPIN = 9, ERR_PLAN = 10 };
#define MEMCPY_H2D 1
#define HOST_REGISTER_PORTABLE 1
#define MADV_POPULATE_WRITE_ 23

/* Mirrored by _native.Job (ctypes); keep the two in step. */
struct stasis_lanes_job {
	int32_t fd, api, nwin, nlanes, nslots, ncopies, nspans;
	int32_t ahead;         /* 1: pin_slots pins the slots (a lane pins its first itself only if untaken) */
	int64_t slot_bytes;    /* also the windows' size */
	const int64_t *copies; /* per copy: file offset, destination address, size (sorted by offset, disjoint) */
	const int64_t *spans;  /* per span: start, end: the file ranges to read, sorted, covering every copy */
	void *const *slots;    /* nlanes * nslots pinned host buffers */
	void *const *streams;  /* per lane */
	void *const *events;   /* nlanes * nslots */
	void *copy, *record, *sync, *init, *pin, *unpin, *stream_sync;
	intptr_t init_arg;
	int64_t *lane_stats; /* out, per lane (LANE_STATS values): ns reading, ns waiting for a slot, windows; then when
	                      * (ns since the run began) its first slot was pinned, its last copy issued, its stream drained
	                      * and its slots unpinned (whether they still are: pin_state) */
	int64_t *error;      /* out: what (ERR_*), code (errno or CUDA error), the window's file offset (or -1) */
	_Atomic int32_t *pin_state; /* per slot (lane-major), shared with pin_slots: PIN_FREE ... PIN_FAILED */
	int64_t *pin_error;         /* per slot: the CUDA error of a failed pin */
	/* nwin (out): the windows read */
};

/* A slot: not pinned (nobody has taken it), being pinned (by its lane or by pin_slots ahead of the run),
 * pinned (until its lane unpins it: PIN_FREE again), or its pinning failed. */
enum { PIN_FREE = 0, PIN_TAKEN = 1, PIN_DONE = 2, PIN_FAILED = 3 };

/* Mirrored by _native.PinJob (ctypes); keep the two in step. */
struct stasis_lanes_pin_job {
	int32_t api, nlanes, nslots;
	int32_t threads;            /* pinners: pinner t pins the slots of lanes t, t + threads, ..., first slots first */
	int64_t slot_bytes;         /* lane i's slot s: base + (i * nslots + s) * slot_bytes */
	char *base;
	void *init, *pin;
	intptr_t init_arg;
	_Atomic int32_t *pin_state; /* per slot, as in the run's job */
	int64_t *pin_error;
	_Atomic int32_t *stop;      /* set by Python: take no more slots */
	int64_t *pin_times;         /* out, per lane: when (CLOCK_MONOTONIC ns) its pinner began, had pinned the lane's
	                             * first slot and all it took; 0 where it took none */
};

#define LANE_STATS 7

/* The windows of a run (plan_windows): per window its file offset, length, first piece and number of pieces; per
 * piece its offset in the window, destination address and size. */
struct plan {
	int64_t *win, *pieces;
	int32_t nwin;
};

struct lane {
	struct stasis_lanes_job *job;
	const struct plan *plan;
	atomic_int *next, *failed;
	int index;
	int64_t t0; /* when the run began (CLOCK_MONOTONIC ns) */
};

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void fail(struct lane *l, int64_t what, int64_t code, int64_t window)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(l->failed, &expected, 1)) { /* the first failure is the one reported */
		l->job->error[0] = what;
		l->job->error[1] = code;
		l->job->error[2] = window;
	}
}

static int read_window(int fd, char *dst, int64_t length, int64_t offset, int64_t *code)
{
	int64_t done = 0;
	while (done < length) {
		ssize_t n = pread(fd, dst + done, (size_t)(length - done), offset + done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*code = errno;
			return ERR_READ;
		}
		if (n == 0) {
			*code = offset + done;
			return ERR_EOF;
		}
		done += n;
	}
	return 0;
}

/* Takes a slot if nobody has (PIN_FREE -> PIN_TAKEN), faults it in and pins it: PIN_DONE, or PIN_FAILED with the
 * CUDA error in *code. Does nothing if another thread had taken it. Returns whether it took it. */
static int take_and_pin(int api, void *pin, char *own, size_t bytes, _Atomic int32_t *state, int64_t *code)
{
	int32_t expected = PIN_FREE;
	if (!atomic_compare_exchange_strong(state, &expected, PIN_TAKEN))
		return 0;
	madvise(own, bytes, MADV_POPULATE_WRITE_); /* best effort: the registration faults in the rest */
	int rc = api == API_HOST ? 0 : ((register_fn)pin)(own, bytes, HOST_REGISTER_PORTABLE);
	*code = rc;
	atomic_store(state, rc ? PIN_FAILED : PIN_DONE);
	return 1;
}

static int init_thread(int api, void *init, intptr_t arg)
{
	if (api == API_RUNTIME)
		return ((init_rt_fn)init)((int)arg);
	if (api == API_DRIVER)
		return ((init_drv_fn)init)((void *)arg);
	return 0;
}

struct pinner {
	struct stasis_lanes_pin_job *job;
	int index;
};

static void *pinner_main(void *arg)
{
	struct pinner *w = arg;
	struct stasis_lanes_pin_job *p = w->job;
	int64_t began = now_ns();
	if (atomic_load(p->stop) || init_thread(p->api, p->init, p->init_arg))
		return NULL; /* nothing taken: each lane pins its first slot itself and runs on it */
	for (int s = 0; s < p->nslots; s++) {
		for (int i = w->index; i < p->nlanes && !atomic_load(p->stop); i += p->threads) {
			int64_t k = (int64_t)i * p->nslots + s, *times = p->pin_times + 3 * i;
			if (!take_and_pin(p->api, p->pin, p->base + k * p->slot_bytes, (size_t)p->slot_bytes, &p->pin_state[k],
			                  &p->pin_error[k]))
				continue;
			times[0] = times[0] ? times[0] : began;
			times[1] = s == 0 ? now_ns() : times[1];
			times[2] = now_ns();
		}
	}
	return NULL;
}

/* Pins the lanes' slots ahead of the run, on job->threads threads, every lane's first slot before any second one
 * (each faults its slot in, then registers it; the faults of fresh memory are most of the cost), while Python still
 * checks the load, so that the lanes find their first slots pinned. A slot already taken (by its lane, once the run
 * has begun) is left to it. Ends once every pinner is done (a lane whose pinner did not start pins its first slot
 * itself and runs on it alone). */
static void *pin_slots(void *arg)
{
	struct stasis_lanes_pin_job *p = arg;
	pthread_t threads[MAX_LANES];
	struct pinner pinners[MAX_LANES];
	int started = 0;
	p->threads = p->threads < 1 ? 1 : p->threads > p->nlanes ? p->nlanes : p->threads;
	for (; started < p->threads && started < MAX_LANES; started++) {
		pinners[started] = (struct pinner){ .job = p, .index = started };
		if (pthread_create(&threads[started], NULL, pinner_main, &pinners[started]))
			break;
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	return NULL;
}

/* Starts pin_slots on a thread of its own and returns: 0 with *thread set, or the pthread_create error. Started from
 * a Python thread instead, the pinning would begin late: that thread first waits for Python's lock, which the
 * caller holds while it parses the header. Join it with stasis_lanes_pin_join before the job
 * goes. */
int stasis_lanes_pin_start(struct stasis_lanes_pin_job *p, uint64_t *thread)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, pin_slots, p);
	if (!rc)
		*thread = (uint64_t)t;
	return rc;
}

int stasis_lanes_pin_join(uint64_t thread)
{
	return pthread_join((pthread_t)thread, NULL);
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct stasis_lanes_job *j = l->job;
	int64_t *stats = j->lane_stats + LANE_STATS * l->index, k = 0, code = 0;
	void *stream = j->streams[l->index];
	void *const *slots = j->slots + l->index * j->nslots, *const *events = j->events + l->index * j->nslots;
	_Atomic int32_t *state = j->pin_state + l->index * j->nslots;
	int64_t *pin_error = j->pin_error + l->index * j->nslots;
	unsigned char used[MAX_SLOTS] = { 0 }; /* whether a slot has copies issued from it (its event recorded) */
	int rc = 0, ready = 1, slot = -1;

	if ((rc = init_thread(j->api, j->init, j->init_arg))) {
		fail(l, ERR_INIT, rc, -1);
		return NULL;
	}
	/* Its first slot: pinned ahead (pin_slots), being pinned there (wait), or pinned here; without pinning
	 * ahead, all of its slots here. */
	for (int s = 0; s < (j->ahead ? 1 : j->nslots); s++)
		take_and_pin(j->api, j->pin, slots[s], (size_t)j->slot_bytes, &state[s], &pin_error[s]);
	int32_t first;
	while ((first = atomic_load(&state[0])) == PIN_TAKEN) {
		struct timespec pause = { 0, 20000 };
		nanosleep(&pause, NULL);
	}
	if (first != PIN_DONE)
		fail(l, ERR_PIN, pin_error[0], -1); /* and runs no window; what it pinned itself is unpinned below */
	else
		stats[3] = now_ns() - l->t0;
	while (first == PIN_DONE && !atomic_load(l->failed)) {
		/* The slots pinned since (in order: a pinner pins them so). */
		while (ready < j->nslots && atomic_load(&state[ready]) == PIN_DONE)
			ready++;
		if (ready < j->nslots && atomic_load(&state[ready]) == PIN_FAILED) {
			fail(l, ERR_PIN, pin_error[ready], -1);
			break;
		}
		int w = atomic_fetch_add(l->next, 1);
		if (w >= l->plan->nwin)
			break;
		slot = (slot + 1) % ready;
		char *base = slots[slot];
		void *event = events[slot];
		const int64_t *win = l->plan->win + 4 * (int64_t)w;
		int64_t t = now_ns();
		if (used[slot] && j->api != API_HOST && (rc = ((sync_fn)j->sync)(event))) {
			fail(l, ERR_SYNC, rc, win[0]);
			break;
		}
		used[slot] = 1;
		stats[1] += now_ns() - t;
		t = now_ns();
		int what = read_window(j->fd, base, win[1], win[0], &code);
		stats[0] += now_ns() - t;
		if (what) {
			fail(l, what, code, win[0]);
			break;
		}
		for (int64_t p = win[2]; p < win[2] + win[3]; p++) {
			const int64_t *piece = l->plan->pieces + 3 * p;
			if (j->api == API_RUNTIME)
				rc = ((copy_rt_fn)j->copy)((void *)piece[1], base + piece[0], (size_t)piece[2], MEMCPY_H2D, stream);
			else if (j->api == API_DRIVER)
				rc = ((copy_drv_fn)j->copy)((uint64_t)piece[1], base + piece[0], (size_t)piece[2], stream);
			else
				memcpy((void *)piece[1], base + piece[0], (size_t)piece[2]);
			if (rc)
				break;
		}
		if (rc) {
			fail(l, ERR_COPY, rc, win[0]);
			break;
		}
		if (j->api != API_HOST && (rc = ((record_fn)j->record)(event, stream))) {
			fail(l, ERR_RECORD, rc, win[0]);
			break;
		}
		k++;
	}
	stats[2] = k;
	stats[4] = now_ns() - l->t0;
	if (j->api != API_HOST) {
		/* Every copy this lane issued must be done before its slots are unpinned (a failed wait leaves them
		 * pinned: Python then drains the stream and unpins). */
		if ((rc = ((sync_fn)j->stream_sync)(stream))) {
			fail(l, ERR_SYNC, rc, -1);
			return NULL;
		}
		stats[5] = now_ns() - l->t0;
	}
	/* Its slots pinned by now (one still being pinned ahead is left to Python, which joins the pinners first). */
	for (int s = 0; s < j->nslots; s++) {
		if (atomic_load(&state[s]) != PIN_DONE)
			continue;
		if (j->api != API_HOST && (rc = ((unregister_fn)j->unpin)(slots[s]))) {
			fail(l, ERR_UNPIN, rc, -1);
			return NULL;
		}
		atomic_store(&state[s], PIN_FREE);
	}
	stats[6] = now_ns() - l->t0;
	return NULL;
}

/* The job's windows: each span cut into windows of slot_bytes from its start, with the pieces of the copies that
 * fall in each (a copy across a window's end is cut there); windows with no piece are dropped. The same windows
 * as _plan.windows, made here so that the load does not wait for Python to build thousands of them. Returns 0, or
 * an ERR_PLAN code: ENOMEM, or EINVAL for a copy outside the spans or out of order. */
static int plan_windows(const struct stasis_lanes_job *j, struct plan *p)
{
	int64_t nw = 0;
	for (int32_t s = 0; s < j->nspans; s++)
		nw += (j->spans[2 * s + 1] - j->spans[2 * s] + j->slot_bytes - 1) / j->slot_bytes;
	p->win = malloc(sizeof(int64_t) * 4 * (size_t)(nw + 1));
	p->pieces = malloc(sizeof(int64_t) * 3 * (size_t)(j->ncopies + nw + 1)); /* a window's end cuts one copy */
	if (!p->win || !p->pieces)
		return ENOMEM;
	int64_t k = 0;
	for (int32_t s = 0; s < j->nspans; s++) {
		int64_t end = j->spans[2 * s + 1];
		for (int64_t at = j->spans[2 * s]; at < end; at += j->slot_bytes, k++) {
			int64_t *w = p->win + 4 * k;
			w[0] = at;
			w[1] = (at + j->slot_bytes < end ? at + j->slot_bytes : end) - at;
			w[2] = w[3] = 0;
		}
	}
	int64_t np = 0, w = 0, last = -1;
	for (int32_t c = 0; c < j->ncopies; c++) {
		int64_t off = j->copies[3 * c], addr = j->copies[3 * c + 1], size = j->copies[3 * c + 2];
		if (off < last)
			return EINVAL;
		last = off + size;
		for (int64_t pos = off; pos < off + size;) {
			while (w < nw && p->win[4 * w] + p->win[4 * w + 1] <= pos)
				w++;
			if (w >= nw || pos < p->win[4 * w])
				return EINVAL;
			int64_t *win = p->win + 4 * w, wend = win[0] + win[1];
			int64_t n = (off + size < wend ? off + size : wend) - pos;
			if (win[3]++ == 0)
				win[2] = np;
			p->pieces[3 * np] = pos - win[0];
			p->pieces[3 * np + 1] = addr + (pos - off);
			p->pieces[3 * np + 2] = n;
			np++;
			pos += n;
		}
	}
	int64_t kept = 0;
	for (int64_t i = 0; i < nw; i++)
		if (p->win[4 * i + 3] > 0)
			memmove(p->win + 4 * kept++, p->win + 4 * i, sizeof(int64_t) * 4);
	p->nwin = (int32_t)kept;
	return 0;
}

/* Plans the job's windows, then runs its lanes to their end (each stops after its current window once one has
 * failed). Returns 0 with job->nwin set, or -1 with job->error set. Nothing is left allocated: the plan is freed
 * and the threads joined before returning. */
int stasis_lanes_run(struct stasis_lanes_job *job)
{
	pthread_t threads[MAX_LANES];
	struct lane lanes[MAX_LANES];
	struct plan plan = { 0 };
	atomic_int next = 0, failed = 0;
	int started = 0, rc;

	job->error[2] = -1;
	if (job->nlanes < 1 || job->nlanes > MAX_LANES || job->nslots < 1 || job->nslots > MAX_SLOTS ||
	    job->slot_bytes < 1) {
		job->error[0] = ERR_THREAD;
		job->error[1] = EINVAL;
		return -1;
	}
	memset(job->lane_stats, 0, sizeof(int64_t) * LANE_STATS * (size_t)job->nlanes);
	int64_t t0 = now_ns();
	if ((rc = plan_windows(job, &plan))) {
		job->error[0] = ERR_PLAN;
		job->error[1] = rc;
		free(plan.win);
		free(plan.pieces);
		return -1;
	}
	job->nwin = plan.nwin;
	for (; started < job->nlanes; started++) {
		lanes[started] = (struct lane){ .job = job, .plan = &plan, .next = &next, .failed = &failed, .index = started, .t0 = t0 };
		rc = pthread_create(&threads[started], NULL, lane_main, &lanes[started]);
		if (rc) {
			fail(&lanes[started], ERR_THREAD, rc, -1);
			break;
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(plan.win);
	free(plan.pieces);
	return atomic_load(&failed) ? -1 : 0;
}
