/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the socket I/O backends. */
#ifndef QG_IO_SOCK_H
#define QG_IO_SOCK_H

#include <stdint.h>

#include "qgate/addr.h"

/**
 * Open the SO_REUSEPORT socket of one service for one worker, bound to
 * listen, non-blocking, with large socket buffers. 0 and *fd, or -errno
 * (logged with the address).
 */
int qg_io_sock_listen(const struct qg_addr *listen, int *fd);

/** Round a buffer stride for payloads of max_datagram plus a header of hdr bytes up to a cache line. */
static inline uint32_t qg_io_stride(uint32_t max_datagram, uint32_t hdr)
{
	return (max_datagram + hdr + 63u) & ~63u;
}

#endif /* QG_IO_SOCK_H */
