/*
 * The physical-limit reference of `make bench` (scripts/bench.sh): a UDP
 * reflector working directly on a TUN fd, in C, with nothing between the
 * kernel and the swap. It creates the TUN device NAME (IFF_TUN | IFF_NO_PI;
 * the script assigns the address and brings it up), then until SIGTERM or
 * SECONDS have passed: poll(2), read up to 64 packets, swap the IPv4
 * addresses and UDP ports of each (checksum-neutral) and write it back with
 * its own write(2). Anything else is counted and dropped.
 *
 *   reflect NAME SECONDS
 *
 * It prints "ready NAME" on stderr once the device exists and
 * "reflected=N ignored=N failed=N" on stdout at the end. Run it only inside a
 * private network namespace (scripts/in-netns).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BURST 64
#define BUFSZ 65536

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int swap_ipv4_udp(unsigned char *p, ssize_t n)
{
	unsigned char t[4];
	int ihl;

	if (n < 20 || p[0] >> 4 != 4)
		return 0;
	ihl = (p[0] & 0x0f) * 4;
	if (ihl < 20 || n < ihl + 8 || p[9] != 17)
		return 0;
	if (((p[6] << 8 | p[7]) & 0x1fff) != 0)
		return 0;
	memcpy(t, p + 12, 4);
	memcpy(p + 12, p + 16, 4);
	memcpy(p + 16, t, 4);
	memcpy(t, p + ihl, 2);
	memcpy(p + ihl, p + ihl + 2, 2);
	memcpy(p + ihl + 2, t, 2);
	return 1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static unsigned char bufs[BURST][BUFSZ];
	ssize_t lens[BURST];
	unsigned long reflected = 0, ignored = 0, failed = 0;
	struct ifreq ifr;
	struct pollfd pfd;
	struct sigaction sa;
	double deadline;
	int fd, i, n;

	if (argc != 3 || strlen(argv[1]) >= IFNAMSIZ || atoi(argv[2]) <= 0) {
		fprintf(stderr, "usage: reflect NAME SECONDS\n");
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	deadline = now() + atoi(argv[2]);

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		perror("reflect: /dev/net/tun");
		return 1;
	}
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		perror("reflect: TUNSETIFF");
		return 1;
	}
	fprintf(stderr, "ready %s\n", ifr.ifr_name);

	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!stop && now() < deadline) {
		/* a bounded wait, so that SIGTERM and the deadline are seen */
		if (poll(&pfd, 1, 100) < 0) {
			if (errno == EINTR)
				continue;
			perror("reflect: poll");
			return 1;
		}
		if (!pfd.revents)
			continue;
		for (n = 0; n < BURST; n++) {
			lens[n] = read(fd, bufs[n], BUFSZ);
			if (lens[n] < 0)
				break;
		}
		for (i = 0; i < n; i++) {
			if (!swap_ipv4_udp(bufs[i], lens[i])) {
				ignored++;
				continue;
			}
			if (write(fd, bufs[i], lens[i]) < 0)
				failed++;
			else
				reflected++;
		}
	}
	printf("reflected=%lu ignored=%lu failed=%lu\n", reflected, ignored, failed);
	return 0;
}
