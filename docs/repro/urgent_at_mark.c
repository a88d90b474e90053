/* Reproducer of the urgent-oob-open finding: recv(MSG_OOB) at the mark on SMC-D
 * loopback-ism, Linux 6.12.118. Reuses the project's guest harness helpers (pair setup, UEID). */
#define main harness_main
#include "harness.c" /* conformance/kernel/harness.c, found through -I */
#undef main
#include <sys/ioctl.h>
#include <poll.h>

static void trial(const char *name, enum kind k, uint16_t port, int reader_blocked_first)
{
	printf("@@OOB trial %s\n", name);
	if (k == K_SMC)
		printf("@@OOB ueid_add=%d\n", ueid_add());
	int lfd = server(k, 0, port, 16, 16384, 16384);
	int cfd = client(k, 0, port, 16384, 16384);
	int sfd = accept_to(lfd, 5000);
	if (lfd < 0 || cfd < 0 || sfd < 0) { printf("@@OOB setup failed\n"); return; }
	struct diag_rec recs[16];
	if (k == K_SMC) printf("@@OOB smc_diag records=%d\n", diag_dump(recs, 16));
	char c = 0; ssize_t r;
	/* a byte each way first, so both ends are established and idle */
	r = send(cfd, "a", 1, 0); r = recv(sfd, &c, 1, 0); printf("@@OOB warmup recv=%zd '%c'\n", r, c);
	if (reader_blocked_first) {
		/* control: the reader is inside recv() when the urgent byte arrives */
		int fl = fcntl(sfd, F_GETFL); fcntl(sfd, F_SETFL, fl | O_NONBLOCK);
	}
	r = send(cfd, "!", 1, MSG_OOB);
	printf("@@OOB send(MSG_OOB)=%zd errno=%d\n", r, r < 0 ? errno : 0);
	struct pollfd p = { .fd = sfd, .events = POLLPRI | POLLIN };
	int pr = poll(&p, 1, 2000);
	printf("@@OOB poll=%d revents=0x%x\n", pr, p.revents);
	if (reader_blocked_first) {
		r = recv(sfd, &c, 1, MSG_DONTWAIT); /* finds no data, valid urgent byte: skips it */
		printf("@@OOB plain recv first=%zd errno=%d\n", r, r < 0 ? errno : 0);
	}
	int atmark = -1; ioctl(sfd, SIOCATMARK, &atmark);
	printf("@@OOB SIOCATMARK=%d\n", atmark);
	r = recv(sfd, &c, 1, MSG_OOB);
	printf("@@OOB recv(MSG_OOB)=%zd '%c' errno=%d\n", r, r > 0 ? c : '?', r < 0 ? errno : 0);
	int fl = fcntl(cfd, F_GETFL); fcntl(cfd, F_SETFL, fl | O_NONBLOCK);
	msleep(500);
	r = send(cfd, "x", 1, 0);
	printf("@@OOB next send=%zd errno=%d (%s)\n", r, r < 0 ? errno : 0, r < 0 ? strerror(errno) : "ok");
	msleep(500);
	r = recv(sfd, &c, 1, MSG_DONTWAIT);
	printf("@@OOB next recv=%zd '%c' errno=%d\n", r, r > 0 ? c : '?', r < 0 ? errno : 0);
	close(cfd); close(sfd); close(lfd);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("\n@@OOB start\n");
	trial("tcp", K_TCP, 21000, 0);
	trial("smc-oob-first", K_SMC, 21010, 0);
	trial("smc-recv-first", K_SMC, 21020, 1);
	printf("@@OOB done\n");
	return 0;
}
