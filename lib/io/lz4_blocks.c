/*
 * A parallel LZ4 frame encoder for inputs of known size (WAL segments).
 * The frame has independent 256 KiB blocks, the content size and the
 * content checksum (XXH32), so `lz4 -d` and LZ4F read it like any other;
 * independent blocks let worker threads compress several at once while the
 * reading thread keeps them in order.  A few blocks are in flight at a
 * time, so memory stays near 2 MiB whatever the input.
 */
#include <lz4.h>
#include <lz4hc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/lz4_blocks.h"
#include "io/xxhash.h"

#define BLOCK_SIZE (256 * 1024)
#define BLOCK_SIZE_ID 5 /* 256 KiB in the frame descriptor */
#define MAX_THREADS 4
#define LZ4_MAGIC 0x184D2204u

/* ---- the encoder ---------------------------------------------------------- */

typedef enum { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE } slot_state;

typedef struct slot {
	slot_state state;
	uint64_t seq;
	unsigned char *in;
	size_t in_len;
	unsigned char *out; /* 4-byte block header, then the block */
	size_t out_len;
} slot;

struct wal_lz4_blocks {
	wal_source base;
	wal_source *inner;
	uint64_t content_size;
	int level;
	int nthreads;
	pthread_t threads[MAX_THREADS];
	pthread_mutex_t lock;
	pthread_cond_t work; /* a slot was queued, or stop */
	pthread_cond_t done; /* a slot was compressed */
	int stop;
	slot *slots;
	int nslots;
	uint64_t next_read; /* sequence number of the next block to read */
	uint64_t next_emit; /* ... and of the next block to hand out */
	int inner_done;
	uint64_t read_bytes;
	wal_xxh32 content;
	/* bytes being handed out: the header, a block, or the trailer */
	unsigned char small[32];
	const unsigned char *out;
	size_t out_len, out_pos;
	int emitting_slot; /* slot whose out is being handed out, or -1 */
	int64_t produced;  /* frame bytes handed out so far */
	int header_done, trailer_done;
};

static void compress_slot(const wal_lz4_blocks *b, slot *s)
{
	int bound = LZ4_compressBound((int)s->in_len);
	int n = b->level == WAL_LZ4_STORED ? 0
		: b->level >= LZ4HC_CLEVEL_MIN
			? LZ4_compress_HC((const char *)s->in, (char *)s->out + 4, (int)s->in_len,
					  bound, b->level)
			: LZ4_compress_fast((const char *)s->in, (char *)s->out + 4, (int)s->in_len,
					    bound, b->level < 0 ? -b->level : 1);
	uint32_t word;
	if (n <= 0 || (size_t)n >= s->in_len) {
		/* incompressible, or not to be compressed: stored as is, flagged by the high bit */
		memcpy(s->out + 4, s->in, s->in_len);
		word = (uint32_t)s->in_len | 0x80000000u;
		n = (int)s->in_len;
	} else
		word = (uint32_t)n;
	s->out[0] = (unsigned char)word;
	s->out[1] = (unsigned char)(word >> 8);
	s->out[2] = (unsigned char)(word >> 16);
	s->out[3] = (unsigned char)(word >> 24);
	s->out_len = (size_t)n + 4;
}

static void *worker(void *arg)
{
	wal_lz4_blocks *b = arg;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		slot *pick = NULL;
		for (int i = 0; i < b->nslots; i++)
			if (b->slots[i].state == SLOT_QUEUED &&
			    (!pick || b->slots[i].seq < pick->seq))
				pick = &b->slots[i];
		if (!pick) {
			if (b->stop)
				break;
			pthread_cond_wait(&b->work, &b->lock);
			continue;
		}
		pick->state = SLOT_BUSY;
		pthread_mutex_unlock(&b->lock);
		compress_slot(b, pick);
		pthread_mutex_lock(&b->lock);
		pick->state = SLOT_DONE;
		pthread_cond_broadcast(&b->done);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static slot *slot_of(wal_lz4_blocks *b, uint64_t seq)
{
	return &b->slots[seq % (uint64_t)b->nslots];
}

/* Reads blocks into free slots and queues them, as far as slots allow. */
static wal_err queue_blocks(wal_lz4_blocks *b, wal_error *e)
{
	while (!b->inner_done && b->next_read < b->next_emit + (uint64_t)b->nslots) {
		slot *s = slot_of(b, b->next_read);
		size_t len = 0;
		/* the slot is free: its block was handed out (only this thread frees) */
		while (len < BLOCK_SIZE) {
			size_t got = 0;
			wal_err rc =
				b->inner->read(b->inner, s->in + len, BLOCK_SIZE - len, &got, e);
			if (rc != WAL_OK)
				return rc;
			if (got == 0) {
				b->inner_done = 1;
				break;
			}
			len += got;
		}
		if (len == 0)
			break;
		wal_xxh32_update(&b->content, s->in, len);
		b->read_bytes += len;
		s->in_len = len;
		s->seq = b->next_read++;
		if (b->nthreads == 0) {
			compress_slot(b, s);
			s->state = SLOT_DONE;
		} else {
			pthread_mutex_lock(&b->lock);
			s->state = SLOT_QUEUED;
			pthread_cond_signal(&b->work);
			pthread_mutex_unlock(&b->lock);
		}
	}
	if (b->inner_done && b->read_bytes != b->content_size)
		return wal_fail(e, WAL_EIO,
				"input is %llu bytes, not the %llu announced (changed while read?)",
				(unsigned long long)b->read_bytes,
				(unsigned long long)b->content_size);
	return WAL_OK;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* Sets out to the next bytes of the frame; out_len 0 at the end. */
static wal_err next_piece(wal_lz4_blocks *b, wal_error *e)
{
	b->out_pos = b->out_len = 0;
	if (b->emitting_slot >= 0) {
		/* workers read every slot's state under the lock */
		pthread_mutex_lock(&b->lock);
		b->slots[b->emitting_slot].state = SLOT_FREE;
		pthread_mutex_unlock(&b->lock);
		b->emitting_slot = -1;
	}
	if (!b->header_done) {
		/* magic, FLG (version 1, independent blocks, content size and
		 * checksum), BD (block size), content size, header checksum */
		unsigned char *p = b->small;
		put_le32(p, LZ4_MAGIC);
		p[4] = 0x40 | 0x20 | 0x08 | 0x04;
		p[5] = BLOCK_SIZE_ID << 4;
		for (int i = 0; i < 8; i++)
			p[6 + i] = (unsigned char)(b->content_size >> (8 * i));
		wal_xxh32 hc;
		wal_xxh32_init(&hc, 0);
		wal_xxh32_update(&hc, p + 4, 10);
		p[14] = (unsigned char)(wal_xxh32_digest(&hc) >> 8);
		b->out = b->small;
		b->out_len = 15;
		b->header_done = 1;
		return WAL_OK;
	}
	wal_err rc = queue_blocks(b, e);
	if (rc != WAL_OK)
		return rc;
	if (b->next_emit < b->next_read) {
		slot *s = slot_of(b, b->next_emit);
		if (b->nthreads) {
			pthread_mutex_lock(&b->lock);
			while (s->state != SLOT_DONE)
				pthread_cond_wait(&b->done, &b->lock);
			pthread_mutex_unlock(&b->lock);
		}
		b->out = s->out;
		b->out_len = s->out_len;
		b->emitting_slot = (int)(s - b->slots);
		b->next_emit++;
		return WAL_OK;
	}
	if (!b->trailer_done) {
		put_le32(b->small, 0); /* end mark */
		put_le32(b->small + 4, wal_xxh32_digest(&b->content));
		b->out = b->small;
		b->out_len = 8;
		b->trailer_done = 1;
	}
	return WAL_OK;
}

static wal_err blocks_read(wal_source *base, void *buf, size_t cap, size_t *got, wal_error *e)
{
	wal_lz4_blocks *b = (wal_lz4_blocks *)base;
	size_t done = 0;
	while (done < cap) {
		if (b->out_pos == b->out_len) {
			wal_err rc = next_piece(b, e);
			if (rc != WAL_OK)
				return rc;
			if (b->out_len == 0) {
				b->base.size = b->produced;
				break;
			}
		}
		size_t n = b->out_len - b->out_pos;
		if (n > cap - done)
			n = cap - done;
		memcpy((char *)buf + done, b->out + b->out_pos, n);
		b->out_pos += n;
		b->produced += (int64_t)n;
		done += n;
	}
	*got = done;
	return WAL_OK;
}

/* Waits until no worker holds a slot, then forgets every block. */
static void quiesce(wal_lz4_blocks *b)
{
	pthread_mutex_lock(&b->lock);
	for (;;) {
		int busy = 0;
		for (int i = 0; i < b->nslots; i++)
			if (b->slots[i].state == SLOT_QUEUED || b->slots[i].state == SLOT_BUSY)
				busy = 1;
		if (!busy)
			break;
		pthread_cond_wait(&b->done, &b->lock);
	}
	for (int i = 0; i < b->nslots; i++)
		b->slots[i].state = SLOT_FREE;
	pthread_mutex_unlock(&b->lock);
}

static wal_err blocks_rewind(wal_source *base, wal_error *e)
{
	wal_lz4_blocks *b = (wal_lz4_blocks *)base;
	quiesce(b);
	wal_err rc = b->inner->rewind(b->inner, e);
	if (rc != WAL_OK)
		return rc;
	b->next_read = b->next_emit = 0;
	b->inner_done = 0;
	b->read_bytes = 0;
	wal_xxh32_init(&b->content, 0);
	b->out = NULL;
	b->out_len = b->out_pos = 0;
	b->emitting_slot = -1;
	b->produced = 0;
	b->header_done = b->trailer_done = 0;
	return WAL_OK;
}

void wal_lz4_blocks_free(wal_lz4_blocks *b)
{
	if (!b)
		return;
	if (b->nthreads) {
		pthread_mutex_lock(&b->lock);
		b->stop = 1;
		pthread_cond_broadcast(&b->work);
		pthread_mutex_unlock(&b->lock);
		for (int i = 0; i < b->nthreads; i++)
			pthread_join(b->threads[i], NULL);
	}
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->work);
	pthread_cond_destroy(&b->done);
	for (int i = 0; b->slots && i < b->nslots; i++) {
		free(b->slots[i].in);
		free(b->slots[i].out);
	}
	free(b->slots);
	free(b);
}

wal_err wal_lz4_blocks_new(wal_lz4_blocks **out, wal_source *inner, uint64_t content_size,
			   int level, int threads, wal_error *e)
{
	wal_lz4_blocks *b = calloc(1, sizeof(*b));
	if (!b)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	b->base.read = blocks_read;
	b->base.rewind = blocks_rewind;
	b->base.size = -1;
	b->inner = inner;
	b->content_size = content_size;
	b->level = level;
	b->emitting_slot = -1;
	wal_xxh32_init(&b->content, 0);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->work, NULL);
	pthread_cond_init(&b->done, NULL);
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	/* two blocks per worker keep every worker busy while one is handed out */
	b->nslots = threads > 1 ? 2 * threads : 1;
	b->slots = calloc((size_t)b->nslots, sizeof(*b->slots));
	if (!b->slots)
		goto oom;
	for (int i = 0; i < b->nslots; i++) {
		b->slots[i].in = malloc(BLOCK_SIZE);
		b->slots[i].out = malloc((size_t)LZ4_compressBound(BLOCK_SIZE) + 4);
		if (!b->slots[i].in || !b->slots[i].out)
			goto oom;
	}
	for (int i = 0; threads > 1 && i < threads; i++) {
		if (pthread_create(&b->threads[i], NULL, worker, b) != 0)
			break; /* fewer workers, or none: still correct */
		b->nthreads++;
	}
	*out = b;
	return WAL_OK;
oom:
	wal_lz4_blocks_free(b);
	return wal_fail(e, WAL_ENOMEM, "out of memory for lz4 compression");
}

wal_source *wal_lz4_blocks_base(wal_lz4_blocks *b)
{
	return &b->base;
}
