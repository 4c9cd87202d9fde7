/* SPDX-License-Identifier: BSD-3-Clause */
/* Operator actions on a worker's own relay state, run on the worker thread between bursts. */
#include "qgate/flow.h"
#include "relay_internal.h"

unsigned qg_relay_flush_backend(struct qg_relay *r, uint32_t svc, uint32_t slot)
{
	unsigned n;

	if (svc >= r->n_services)
		return 0;
	/* The removal callback closes the upstreams and updates every per-slot count. */
	n = qg_flow_remove_backend(r->flows, (uint16_t)svc, slot);
	qg_ctr_add(r->ctr, QG_CTR_FLOW_FLUSHED, n);
	return n;
}
