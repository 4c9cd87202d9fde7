/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The built-in configuration: the demo's echo service. Kept as YAML text and
 * loaded through the same parser, so it gets the same checks as a file and
 * can be shown to users as a starting point.
 */
#include "qgate/config.h"

static const char default_yaml[] =
	"# qgate built-in default: one UDP echo service relayed to two local backends.\n"
	"dataplane:\n"
	"  backend: io_uring\n"
	"  # cores: [0]  (default: CPU 0, or the lowest CPU this process may run on)\n"
	"  flows_per_core: 1048576\n"
	"  upstream_sockets_per_core: 65536\n"
	"  rx_buffers: 4096\n"
	"  max_datagram: 2048\n"
	"  burst: 32\n"
	"  udp_gso: true\n"
	"stats_interval: 0\n"
	"services:\n"
	"  - name: echo\n"
	"    listen: 127.0.0.1:4433\n"
	"    protocol: udp\n"
	"    policy: maglev\n"
	"    hash: five_tuple\n"
	"    maglev_table_size: 65537\n"
	"    idle_timeout: 30s\n"
	"    max_flows_per_client: 0\n"
	"    backends:\n"
	"      - address: 127.0.0.1:5001\n"
	"        weight: 1\n"
	"      - address: 127.0.0.1:5002\n"
	"        weight: 1\n";

const char *qg_config_default_yaml(void)
{
	return default_yaml;
}

int qg_config_load_default(struct qg_config **out, struct qg_config_errors *errs)
{
	return qg_config_load_string("<default>", default_yaml, sizeof(default_yaml) - 1, out, errs);
}
