/* SPDX-License-Identifier: BSD-3-Clause */
/* qgatectl's commands, shared between its files. */
#ifndef QG_CTL_H
#define QG_CTL_H

#define QG_CTL_EXIT_OK		0
#define QG_CTL_EXIT_REFUSED	1 /* qgate answered an error (cid: internal failure) */
#define QG_CTL_EXIT_USAGE	2
#define QG_CTL_EXIT_UNREACHABLE 3

/** Default admin socket when neither -s nor QGATE_ADMIN_SOCKET says otherwise. */
#define QG_CTL_SOCKET_DEFAULT "/run/qgate/admin.sock"

/**
 * Run an admin command: argv is "[-s PATH] [--json] COMMAND ARG..." (options
 * may also follow the command). @return the exit status, or -1 when help was
 * asked for.
 */
int qg_ctl_admin(int argc, char **argv);

/** 1 when word names an admin command (status, backends, ...). */
int qg_ctl_is_admin_command(const char *word);

#endif /* QG_CTL_H */
