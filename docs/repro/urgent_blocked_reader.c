/* Reproducer: a reader asleep in a blocking recv() when a lone urgent byte (MSG_OOB, no
 * SO_OOBINLINE) arrives, on TCP (control) and on SMC-D loopback-ism, Linux 6.12.118.
 * From the source (net/smc/smc_rx.c): smc_rx_wait waits for bytes_to_rcv, which a non-inline
 * urgent byte does not raise, so the skip in smc_rx_recvmsg_data_available never runs while
 * the reader sleeps, and the sender's next send waits for urg_tx_pend (smc_tx_sendmsg ->
 * smc_tx_wait). Each blocking call is bounded (SO_RCVTIMEO / SO_SNDTIMEO) and timed.
 * Reuses the project's guest harness helpers (pair setup, UEID). */
#define main harness_main
#include "harness.c" /* conformance/kernel/harness.c, found through -I */
#undef main
#include <sys/ioctl.h>

struct rd { int fd; ssize_t r; int err; unsigned ms; };

static void *reader(void *arg)
{
	struct rd *x = arg;
	char buf[16];
	uint64_t t0 = now_us();
	x->r = recv(x->fd, buf, sizeof(buf), 0);
	x->err = x->r < 0 ? errno : 0;
	x->ms = (unsigned)((now_us() - t0) / 1000);
	return NULL;
}

static void trial(const char *name, enum kind k, uint16_t port)
{
	printf("@@OOB trial %s\n", name);
	if (k == K_SMC)
		printf("@@OOB ueid_add=%d\n", ueid_add());
	int lfd = server(k, 0, port, 16, 16384, 16384);
	int cfd = client(k, 0, port, 16384, 16384);
	int sfd = accept_to(lfd, 5000);
	if (lfd < 0 || cfd < 0 || sfd < 0) { printf("@@OOB setup failed\n"); return; }
	char c = 0;
	ssize_t r = send(cfd, "a", 1, 0);
	r = recv(sfd, &c, 1, 0);
	printf("@@OOB warmup recv=%zd '%c'\n", r, c);
	struct timeval tv = { 3, 0 };
	setsockopt(sfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct timeval tw = { 2, 0 };
	setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tw, sizeof(tw));
	struct rd x = { .fd = sfd };
	pthread_t th;
	pthread_create(&th, NULL, reader, &x);
	msleep(300); /* the reader is asleep in recv() now */
	r = send(cfd, "!", 1, MSG_OOB);
	printf("@@OOB send(MSG_OOB)=%zd errno=%d\n", r, r < 0 ? errno : 0);
	msleep(300);
	uint64_t t0 = now_us();
	r = send(cfd, "x", 1, 0); /* blocking, bounded by SO_SNDTIMEO 2 s */
	int e = errno;
	printf("@@OOB next send=%zd errno=%d (%s) after %u ms\n", r, r < 0 ? e : 0,
	       r < 0 ? strerror(e) : "ok", (unsigned)((now_us() - t0) / 1000));
	pthread_join(th, NULL);
	printf("@@OOB blocked recv=%zd errno=%d (%s) after %u ms\n", x.r, x.err,
	       x.r < 0 ? strerror(x.err) : "ok", x.ms);
	int atmark = -1;
	ioctl(sfd, SIOCATMARK, &atmark);
	r = recv(sfd, &c, 1, MSG_OOB | MSG_DONTWAIT);
	printf("@@OOB SIOCATMARK=%d recv(MSG_OOB)=%zd '%c' errno=%d\n", atmark, r,
	       r > 0 ? c : '?', r < 0 ? errno : 0);
	close(cfd); close(sfd); close(lfd);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("\n@@OOB start\n");
	trial("tcp", K_TCP, 21000);
	trial("smc", K_SMC, 21010);
	printf("@@OOB done\n");
	return 0;
}
