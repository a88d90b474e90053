/* Reproducer of the urgent-ignored finding: an ignored urgent byte that ends lap 0xfffe of a
 * 16 KiB DMB, then reads that cross the 16-bit wrap-counter overflow (Linux 6.12.118). */
#define main harness_main
#include "harness.c"
#undef main
#include <sys/ioctl.h>
#include <poll.h>

#define LEN 16352ULL
static int g_cfd;
static unsigned char pat(uint64_t i) { return (unsigned char)((i * 2654435761ULL) >> 13); }

static void *sender(void *arg)
{
	(void)arg;
	static unsigned char buf[262144];
	uint64_t pre = 65535ULL * LEN - 1, i = 0;
	while (i < pre) {
		size_t n = pre - i < sizeof(buf) ? pre - i : sizeof(buf);
		for (size_t k = 0; k < n; k++) buf[k] = pat(i + k);
		ssize_t r = send(g_cfd, buf, n, 0);
		if (r <= 0) { printf("@@WRAP send err %d\n", errno); return NULL; }
		i += (uint64_t)r;
	}
	unsigned char u = 0xEE;
	ssize_t r = send(g_cfd, &u, 1, MSG_OOB);
	printf("@@WRAP sent %llu bytes, then send(MSG_OOB)=%zd\n", (unsigned long long)i, r);
	/* after the urgent byte: 3 laps of pattern continuing at index i (the urgent byte is not
	 * part of the in-band stream) */
	uint64_t post = 3 * LEN, j = 0;
	while (j < post) {
		size_t n = post - j < sizeof(buf) ? post - j : sizeof(buf);
		for (size_t k = 0; k < n; k++) buf[k] = pat(i + j + k);
		r = send(g_cfd, buf, n, 0);
		if (r <= 0) { printf("@@WRAP post send err %d\n", errno); return NULL; }
		j += (uint64_t)r;
	}
	printf("@@WRAP sender done\n");
	return NULL;
}

static uint64_t got_total;
static int check(const unsigned char *p, size_t n, uint64_t at)
{
	for (size_t k = 0; k < n; k++)
		if (p[k] != pat(at + k)) {
			printf("@@WRAP MISMATCH at stream index %llu (offset %zu of a %zu-byte read): got 0x%02x want 0x%02x\n",
			       (unsigned long long)(at + k), k, n, p[k], pat(at + k));
			return 0;
		}
	return 1;
}

static ssize_t recv_exact(int fd, unsigned char *p, size_t n)
{
	/* one recv call with everything already there: one copy iteration in smc_rx_recvmsg */
	ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
	return r;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("\n@@WRAP start\n");
	printf("@@WRAP ueid_add=%d\n", ueid_add());
	int lfd = server(K_SMC, 0, 22000, 16, 16384, 16384);
	g_cfd = client(K_SMC, 0, 22000, 16384, 16384);
	int sfd = accept_to(lfd, 5000);
	static struct diag_rec recs[16];
	int n = diag_dump(recs, 16);
	for (int i2 = 0; i2 < n; i2++)
		if (recs[i2].has_conninfo)
			printf("@@WRAP diag rmbe_size=%u peer_rmbe_size=%u\n", recs[i2].ci.rmbe_size,
			       recs[i2].ci.peer_rmbe_size);
	pthread_t th;
	pthread_create(&th, NULL, sender, NULL);
	static unsigned char buf[65536];
	uint64_t pre = 65535ULL * LEN - 1;
	while (got_total < pre) {
		size_t want = pre - got_total < sizeof(buf) ? pre - got_total : sizeof(buf);
		ssize_t r = recv(sfd, buf, want, 0);
		if (r <= 0) { printf("@@WRAP recv err %d\n", errno); return 0; }
		if (!check(buf, (size_t)r, got_total)) return 0;
		got_total += (uint64_t)r;
	}
	printf("@@WRAP read the %llu bytes before the urgent byte\n", (unsigned long long)got_total);
	msleep(300);
	int atmark = -1; ioctl(sfd, SIOCATMARK, &atmark);
	printf("@@WRAP SIOCATMARK=%d (urgent byte not read out of band)\n", atmark);
	/* 1: a 1-byte read right after the mark (the skip happens in it) */
	ssize_t r = recv(sfd, buf, 1, 0);
	printf("@@WRAP read1=%zd ok=%d\n", r, r == 1 && check(buf, 1, got_total));
	got_total += (uint64_t)(r > 0 ? r : 0);
	/* 2: len-1 bytes in one copy (ends exactly at the lap end: cons (0,0)) */
	msleep(300);
	r = recv_exact(sfd, buf, LEN - 1);
	printf("@@WRAP read2=%zd ok=%d\n", r, r > 0 && check(buf, (size_t)r, got_total));
	got_total += (uint64_t)(r > 0 ? r : 0);
	/* 3..: len-1 bytes at a time: a read ending at count len-1 of lap 0 */
	for (int k = 0; k < 4; k++) {
		msleep(300);
		r = recv_exact(sfd, buf, LEN - 1);
		int ok = r > 0 && check(buf, (size_t)r, got_total);
		printf("@@WRAP read%d=%zd ok=%d\n", 3 + k, r, ok);
		if (r > 0) got_total += (uint64_t)r;
		if (!ok) break;
	}
	n = diag_dump(recs, 16);
	for (int i2 = 0; i2 < n; i2++)
		if (recs[i2].has_conninfo)
			printf("@@WRAP diag rx_prod=(%u,%u) rx_cons=(%u,%u)\n",
			       recs[i2].ci.rx_prod.wrap, recs[i2].ci.rx_prod.count,
			       recs[i2].ci.rx_cons.wrap, recs[i2].ci.rx_cons.count);
	printf("@@WRAP done\n");
	return 0;
}
