/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging for start-up, control events and errors (never per packet: the
 * fast path counts instead). Lines go to stderr as "qgate: LEVEL: text".
 */
#ifndef QGATE_LOG_H
#define QGATE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum qg_log_level {
	QG_LOG_ERR = 0,
	QG_LOG_WARN = 1,
	QG_LOG_INFO = 2,
	QG_LOG_DEBUG = 3,
};

/** Set the most verbose level printed (default QG_LOG_INFO). */
void qg_log_set_level(enum qg_log_level level);

/** Print one line at level when enabled. Thread-safe (one write(2) per line). */
void qg_log(enum qg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define QG_LOG_ERR(...)	  qg_log(QG_LOG_ERR, __VA_ARGS__)
#define QG_LOG_WARN(...)  qg_log(QG_LOG_WARN, __VA_ARGS__)
#define QG_LOG_INFO(...)  qg_log(QG_LOG_INFO, __VA_ARGS__)
#define QG_LOG_DEBUG(...) qg_log(QG_LOG_DEBUG, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* QGATE_LOG_H */
