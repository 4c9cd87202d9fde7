/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Least connections, weighted: the winner minimises active / weight. The
 * ratios are compared crosswise (a_i * w_j < a_j * w_i) in 64 bits, which is
 * exact for 32-bit counts and weights and avoids a division per member.
 */
#include "qgate/lb.h"

uint32_t qg_lc_pick(const uint32_t *active, const uint32_t *weights, uint32_t n, uint32_t *cursor)
{
	uint32_t start, k, best = QG_LB_NONE;

	if (n == 0 || !active || !weights)
		return QG_LB_NONE;
	/*
	 * Scan from the member after the previous winner, keeping the first
	 * minimum met: equal members then take turns. A cursor left over from
	 * a larger pool just wraps.
	 */
	start = cursor ? (uint32_t)(((uint64_t)*cursor + 1) % n) : 0;
	for (k = 0; k < n; k++) {
		uint32_t i = start + k < n ? start + k : start + k - n;

		if (!weights[i])
			continue;
		if (best == QG_LB_NONE ||
		    (uint64_t)active[i] * weights[best] < (uint64_t)active[best] * weights[i])
			best = i;
	}
	if (best != QG_LB_NONE && cursor)
		*cursor = best;
	return best;
}
