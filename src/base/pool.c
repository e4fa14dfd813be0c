/* pool.c: a fixed set of worker threads draining one FIFO of jobs; enough for
 * hashing and walking on both cores without a scheduler of its own. */
#include <pthread.h>
#include <unistd.h>

#include "cairn/base.h"

typedef struct job {
	void (*fn)(void *arg);
	void *arg;
	struct job *next;
} job;

struct cairn_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;   /* a job was queued, or stopping */
	pthread_cond_t idle;   /* pending reached zero */
	job *head, *tail;
	size_t pending;        /* queued plus running */
	bool stopping;
	unsigned nthreads;
	pthread_t threads[];
};

static void *worker(void *arg)
{
	cairn_pool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		job *j;

		while (!pool->head && !pool->stopping)
			pthread_cond_wait(&pool->work, &pool->lock);
		if (!pool->head)
			break; /* stopping and drained */
		j = pool->head;
		pool->head = j->next;
		if (!pool->head)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->lock);
		j->fn(j->arg);
		cairn_free(j);
		pthread_mutex_lock(&pool->lock);
		if (--pool->pending == 0)
			pthread_cond_broadcast(&pool->idle);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

int cairn_pool_new(cairn_pool **out, unsigned nthreads)
{
	cairn_pool *pool;
	unsigned i;

	*out = NULL;
	if (nthreads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = n > 0 ? (unsigned)n : 1;
	}
	if (nthreads > 1024)
		return cairn_error_set(CAIRN_EINVAL, "thread pool: %u threads is too many", nthreads);
	pool = cairn_calloc(1, sizeof(*pool) + nthreads * sizeof(pthread_t));
	if (!pool)
		return CAIRN_ENOMEM;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->idle, NULL);
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&pool->threads[i], NULL, worker, pool)) {
			pool->nthreads = i;
			cairn_pool_free(pool);
			return cairn_error_set(CAIRN_ERROR, "thread pool: cannot start thread %u", i);
		}
	}
	pool->nthreads = nthreads;
	*out = pool;
	return 0;
}

unsigned cairn_pool_size(const cairn_pool *pool)
{
	return pool->nthreads;
}

int cairn_pool_submit(cairn_pool *pool, void (*fn)(void *arg), void *arg)
{
	job *j = cairn_malloc(sizeof(*j));

	if (!j)
		return CAIRN_ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->tail)
		pool->tail->next = j;
	else
		pool->head = j;
	pool->tail = j;
	pool->pending++;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

void cairn_pool_wait(cairn_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->pending)
		pthread_cond_wait(&pool->idle, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

void cairn_pool_free(cairn_pool *pool)
{
	unsigned i;

	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->work);
	pthread_cond_destroy(&pool->idle);
	cairn_free(pool);
}
