/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "qgate/counters.h"

static const struct {
	const char *name;
	const char *desc;
	int kind;
} ctr_info[QG_CTR__COUNT] = {
#define QG_CTR_INFO(id, kind, name, desc) [QG_CTR_##id] = { name, desc, kind },
	QG_CTR_LIST(QG_CTR_INFO)
#undef QG_CTR_INFO
};

const char *qg_ctr_name(enum qg_ctr_id id)
{
	return (unsigned)id < QG_CTR__COUNT ? ctr_info[id].name : "?";
}

const char *qg_ctr_desc(enum qg_ctr_id id)
{
	return (unsigned)id < QG_CTR__COUNT ? ctr_info[id].desc : "?";
}

int qg_ctr_kind(enum qg_ctr_id id)
{
	return (unsigned)id < QG_CTR__COUNT ? ctr_info[id].kind : -1;
}

void qg_ctr_sum(const struct qg_ctr_block *blocks, unsigned n, struct qg_ctr_block *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < n; w++)
		for (unsigned i = 0; i < QG_CTR__COUNT; i++)
			out->v[i] += qg_ctr_read(&blocks[w], (enum qg_ctr_id)i);
}
