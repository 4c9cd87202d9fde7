/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen statistics: histogram arithmetic, counters and the summary
 * (JSON for scripts, text for people). Independent of the I/O driver.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loadgen.h"

void lg_hist_add(struct lg_hist *dst, const struct lg_hist *src)
{
	uint64_t m = QG_LOAD_RELAXED(&src->max);

	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		dst->count[i] += QG_LOAD_RELAXED(&src->count[i]);
	dst->total += QG_LOAD_RELAXED(&src->total);
	if (m > dst->max)
		dst->max = m;
}

void lg_hist_diff(struct lg_hist *dst, const struct lg_hist *a, const struct lg_hist *b)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		dst->count[i] = a->count[i] - b->count[i];
		total += dst->count[i];
	}
	/* Recount: the total of a live snapshot can be a few records ahead of its buckets. */
	dst->total = total;
	dst->max = a->max;
}

/* Midpoint of bucket i: the value every sample of the bucket is reported as. */
static uint64_t bucket_value(unsigned i)
{
	unsigned k, shift;
	uint64_t low;

	if (i < 2 * LG_HIST_SUB)
		return i;
	k = i - 2 * LG_HIST_SUB;
	shift = k / LG_HIST_SUB + 1;
	low = (uint64_t)(k % LG_HIST_SUB + LG_HIST_SUB) << shift;
	return low + ((1ULL << shift) >> 1);
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
	uint64_t total = 0, rank, seen = 0;

	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		total += h->count[i];
	if (!total)
		return 0;
	rank = (uint64_t)ceil(q * (double)total);
	if (rank < 1)
		rank = 1;
	if (rank > total)
		rank = total;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			uint64_t v = bucket_value(i);

			/* The midpoint can exceed the largest sample of the top bucket. */
			return h->max && v > h->max ? h->max : v;
		}
	}
	return h->max;
}

void lg_counters_add(struct lg_counters *dst, const struct lg_counters *src)
{
	dst->tx += QG_LOAD_RELAXED(&src->tx);
	dst->rx += QG_LOAD_RELAXED(&src->rx);
	dst->lost += QG_LOAD_RELAXED(&src->lost);
	dst->mismatched += QG_LOAD_RELAXED(&src->mismatched);
	dst->late += QG_LOAD_RELAXED(&src->late);
	dst->tx_skipped += QG_LOAD_RELAXED(&src->tx_skipped);
	dst->tx_bursts += QG_LOAD_RELAXED(&src->tx_bursts);
	dst->tx_full += QG_LOAD_RELAXED(&src->tx_full);
}

double lg_tx_full_pct(const struct lg_counters *c)
{
	return c->tx_bursts ? 100.0 * (double)c->tx_full / (double)c->tx_bursts : 0.0;
}

static double loss_pct(const struct lg_counters *c)
{
	return c->tx ? 100.0 * (double)c->lost / (double)c->tx : 0.0;
}

/* Target text comes from the command line: escape it for JSON. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void lg_report_json(FILE *f, const struct lg_report *r)
{
	const struct lg_counters *c = &r->c;
	double d = r->duration_s > 0 ? r->duration_s : 1e-9;

	fprintf(f, "{\"mode\":");
	json_string(f, r->mode);
	fprintf(f, ",\"target\":");
	json_string(f, r->target);
	fprintf(f, ",\"payload\":\"%s\",\"loop\":\"%s\"", r->payload, r->open_loop ? "open" : "closed");
	if (r->quic_lb)
		fprintf(f, ",\"quic_lb\":\"%s\",\"quic_lb_key\":%s,\"server_ids\":%u", r->quic_lb,
			r->quic_lb_key ? "true" : "false", r->server_ids);
	fprintf(f, ",\"flows\":%u,\"window\":%u,\"rate\":%llu,\"size\":%u,\"threads\":%u", r->flows,
		r->window, (unsigned long long)r->rate, r->size, r->threads);
	fprintf(f, ",\"duration_s\":%.3f,\"warmup_s\":%.3f,\"timeout_ms\":%u,\"cpu_s\":%.2f", r->duration_s,
		r->warmup_s, r->timeout_ms, r->cpu_s);
	fprintf(f,
		",\"tx\":%llu,\"rx\":%llu,\"lost\":%llu,\"mismatched\":%llu,\"late\":%llu,\"tx_skipped\":%"
		"llu",
		(unsigned long long)c->tx, (unsigned long long)c->rx, (unsigned long long)c->lost,
		(unsigned long long)c->mismatched, (unsigned long long)c->late,
		(unsigned long long)c->tx_skipped);
	if (c->tx_bursts)
		fprintf(f, ",\"tx_bursts\":%llu,\"tx_full\":%llu,\"tx_full_pct\":%.2f",
			(unsigned long long)c->tx_bursts, (unsigned long long)c->tx_full, lg_tx_full_pct(c));
	fprintf(f, ",\"loss_pct\":%.4f,\"rtt_per_s\":%.1f,\"tx_pps\":%.1f", loss_pct(c), (double)c->rx / d,
		(double)c->tx / d);
	fprintf(f, ",\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f}\n",
		(double)lg_hist_quantile(r->hist, 0.50) / 1e3, (double)lg_hist_quantile(r->hist, 0.90) / 1e3,
		(double)lg_hist_quantile(r->hist, 0.99) / 1e3, (double)lg_hist_quantile(r->hist, 0.999) / 1e3,
		(double)r->hist->max / 1e3);
}

void lg_report_text(FILE *f, const struct lg_report *r)
{
	const struct lg_counters *c = &r->c;
	double d = r->duration_s > 0 ? r->duration_s : 1e-9;

	fprintf(f,
		"qgate-loadgen: %s -> %s, %u flows, %s, %u-byte %s payload, %.1f s measured\n"
		"  tx %llu (%.0f pps)  rx %llu (%.0f round trips/s)  lost %llu (%.3f%%)  mismatched %llu  "
		"late %llu\n"
		"  rtt us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
		r->mode, r->target, r->flows, r->open_loop ? "open loop" : "closed loop", r->size, r->payload,
		r->duration_s, (unsigned long long)c->tx, (double)c->tx / d, (unsigned long long)c->rx,
		(double)c->rx / d, (unsigned long long)c->lost, loss_pct(c),
		(unsigned long long)c->mismatched, (unsigned long long)c->late,
		(double)lg_hist_quantile(r->hist, 0.50) / 1e3, (double)lg_hist_quantile(r->hist, 0.90) / 1e3,
		(double)lg_hist_quantile(r->hist, 0.99) / 1e3, (double)lg_hist_quantile(r->hist, 0.999) / 1e3,
		(double)r->hist->max / 1e3);
	if (c->tx_bursts)
		fprintf(f, "  device ring full on %.1f%% of %llu transmit bursts\n", lg_tx_full_pct(c),
			(unsigned long long)c->tx_bursts);
}
