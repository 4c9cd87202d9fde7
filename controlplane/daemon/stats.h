/* SPDX-License-Identifier: BSD-3-Clause */
/* The daemon's periodic stats report: per service and per backend rates and totals. */
#ifndef QG_DAEMON_STATS_H
#define QG_DAEMON_STATS_H

#include <stdint.h>
#include <stdio.h>

#include "qgate/config.h"
#include "qgate/dataplane.h"

struct qg_stats_report;

/** Prepare a report for cfg's services (cfg must outlive it). 0 or -ENOMEM. */
int qg_stats_report_create(const struct qg_config *cfg, struct qg_stats_report **out);

/** Print rates since the previous call and totals. */
void qg_stats_report_print(struct qg_stats_report *r, const struct qg_dataplane *dp, FILE *f);

/** Print every non-zero counter (at exit). */
void qg_stats_report_totals(const struct qg_dataplane *dp, FILE *f);

/** Free it (NULL is fine). */
void qg_stats_report_destroy(struct qg_stats_report *r);

#endif /* QG_DAEMON_STATS_H */
