/* The number of online CPUs, asked once per process.
 *
 * sysconf(_SC_NPROCESSORS_ONLN) reads a file under /sys: about 10 us on a
 * virtual machine, and the simulator and the social forces ask on every
 * call large enough to use threads (a forward and a backward pass per
 * training step).  A CPU brought online later is not counted (nor are more
 * worker threads started for it). */
#ifndef QODE_COMMON_CPUS_H
#define QODE_COMMON_CPUS_H

/* At least 1. */
int qode_online_cpus(void);

#endif /* QODE_COMMON_CPUS_H */
