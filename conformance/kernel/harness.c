/*
 * smcd-check guest harness: runs inside a qemu guest booted with a Linux kernel built with
 * CONFIG_SMC_LO (SMC-D loopback-ism) and reports what the real kernel did.
 *
 * Build (host): gcc -O2 -static -pthread -o smcd-harness harness.c
 * Run (guest):  smcd-harness SCENARIO...     (or `smcd-harness --list`)
 *
 * Every scenario runs in its own child process (a hung scenario is killed after its timeout
 * and reported; the next one still runs).  Inside the child a capture thread reads every frame
 * on `lo` through an AF_PACKET socket, the scenario opens AF_SMC sockets (family 43) between
 * 127.0.0.1 / ::1 peers, moves data, and takes smc_diag snapshots (NETLINK_SOCK_DIAG, family
 * 43: mode, fallback reason / peer diagnosis, connection cursors and flags, DMB tokens and
 * GIDs).  The result is one JSON object per scenario, printed to the console as base64 lines:
 *
 *   @@SMCD-BEGIN <name> <json length>
 *   @@SMCD-DATA <base64, at most 76 chars>      (repeated)
 *   @@SMCD-END <name>
 *
 * The host (conformance/kernel/qemu.py) parses these lines; nothing else on the console matters.
 * Interpretation (CLC splitting, flag names, comparison with the spec) happens on the host:
 * this program only reports raw facts (frames, diag records, byte counts, checksums, errno).
 *
 * Kernel facts used (Linux 6.12.118, net/smc): AF_SMC sockets take generic SOL_SOCKET options
 * on their TCP "clcsock" and copy SO_RCVBUF/SO_SNDBUF at connect/accept
 * (smc_adjust_sock_bufsizes); the DMB size is sk_rcvbuf/2 rounded down to a power of two
 * >= 16 KiB (__smc_buf_create, smc_compress_bufsize); the SMC-D DMB element length is that
 * minus the 32-byte CDC header area; close() with unread data sends peer_conn_abort
 * (smc_close_final); UEIDs are added over generic netlink "SMC_GEN_NETLINK",
 * SMC_NETLINK_ADD_UEID with a 33-byte attribute (smc_nl_add_ueid); smc_diag dumps every SMC
 * socket (smc_diag_dump), so records are matched by TCP port.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/genetlink.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AF_SMC_ 43
#define SMCPROTO_SMC 0
#define SMCPROTO_SMC6 1
#define SOL_SMC_ 286
#define SMC_LIMIT_HS_ 1

/* include/uapi/linux/smc.h */
#define SMC_NETLINK_ADD_UEID 10
#define SMC_NETLINK_FLUSH_UEID 12
#define SMC_NLA_EID_TABLE_ENTRY 1
#define SMC_MAX_EID_LEN 32

/* include/uapi/linux/smc_diag.h (own copies: that header pulls in rdma headers) */
enum { DIAG_NONE, DIAG_CONNINFO, DIAG_LGRINFO, DIAG_SHUTDOWN, DIAG_DMBINFO, DIAG_FALLBACK };

struct smc_diag_req_ {
	uint8_t diag_family;
	uint8_t pad[2];
	uint8_t diag_ext;
	struct inet_diag_sockid id;
};

struct smc_diag_msg_ {
	uint8_t diag_family;
	uint8_t diag_state;
	uint8_t diag_mode;
	uint8_t diag_shutdown;
	struct inet_diag_sockid id;
	uint32_t diag_uid;
	uint64_t diag_inode __attribute__((aligned(8)));
};

struct diag_cursor_ {
	uint16_t reserved;
	uint16_t wrap;
	uint32_t count;
};

struct smc_diag_conninfo_ {
	uint32_t token, sndbuf_size, rmbe_size, peer_rmbe_size;
	struct diag_cursor_ rx_prod, rx_cons, tx_prod, tx_cons;
	uint8_t rx_prod_flags, rx_conn_state_flags, tx_prod_flags, tx_conn_state_flags;
	struct diag_cursor_ tx_prep, tx_sent, tx_fin;
};

struct smcd_diag_dmbinfo_ {
	uint32_t linkid;
	uint64_t peer_gid __attribute__((aligned(8)));
	uint64_t my_gid __attribute__((aligned(8)));
	uint64_t token __attribute__((aligned(8)));
	uint64_t peer_token __attribute__((aligned(8)));
	uint64_t peer_gid_ext __attribute__((aligned(8)));
	uint64_t my_gid_ext __attribute__((aligned(8)));
};

struct smc_diag_fallback_ {
	uint32_t reason;
	uint32_t peer_diagnosis;
};

static const char *UEID = "SMCD-CHECK-LOOPBACK-ISM";

/* ------------------------------------------------------------------ utilities */

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t rng_next(uint64_t *s) /* xorshift64* */
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void write_all_fd(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* ------------------------------------------------------------------ JSON writer */

struct json {
	char *buf;
	size_t len, cap;
	int depth;
	int first[64];
	int after_key;
};

static struct json J;

static void jgrow(size_t more)
{
	if (J.len + more + 1 > J.cap) {
		size_t nc = J.cap ? J.cap : 65536;
		while (J.len + more + 1 > nc)
			nc *= 2;
		J.buf = realloc(J.buf, nc);
		if (!J.buf)
			_exit(3);
		J.cap = nc;
	}
}

static void jraw(const char *s, size_t n)
{
	jgrow(n);
	memcpy(J.buf + J.len, s, n);
	J.len += n;
	J.buf[J.len] = 0;
}

static void jprintf(const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		jraw(tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void jsep(void)
{
	if (J.after_key) {
		J.after_key = 0;
		return;
	}
	if (J.depth > 0) {
		if (!J.first[J.depth])
			jraw(",", 1);
		J.first[J.depth] = 0;
	}
}

static void jstr_raw(const char *s)
{
	jraw("\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			jraw(e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			jprintf("\\u%04x", c);
		} else {
			jraw((const char *)&c, 1);
		}
	}
	jraw("\"", 1);
}

static void jkey(const char *k)
{
	jsep();
	jstr_raw(k);
	jraw(":", 1);
	J.after_key = 1;
}

static void jobj(void) { jsep(); jraw("{", 1); J.first[++J.depth] = 1; }
static void jobj_end(void) { jraw("}", 1); J.depth--; }
static void jarr(void) { jsep(); jraw("[", 1); J.first[++J.depth] = 1; }
static void jarr_end(void) { jraw("]", 1); J.depth--; }
static void jstr(const char *s) { jsep(); jstr_raw(s); }
static void juint(uint64_t v) { jsep(); jprintf("%llu", (unsigned long long)v); }
static void jint(int64_t v) { jsep(); jprintf("%lld", (long long)v); }
static void jbool(int v) { jsep(); jraw(v ? "true" : "false", v ? 4 : 5); }

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void jb64(const unsigned char *p, size_t n)
{
	jsep();
	jraw("\"", 1);
	jgrow(4 * (n / 3 + 1));
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char o[4] = { B64[(v >> 18) & 63], B64[(v >> 12) & 63],
			      i + 1 < n ? B64[(v >> 6) & 63] : '=', i + 2 < n ? B64[v & 63] : '=' };
		jraw(o, 4);
	}
	jraw("\"", 1);
}

static void kv_uint(const char *k, uint64_t v) { jkey(k); juint(v); }
static void kv_int(const char *k, int64_t v) { jkey(k); jint(v); }
static void kv_str(const char *k, const char *v) { jkey(k); jstr(v); }
static void kv_bool(const char *k, int v) { jkey(k); jbool(v); }

/* Emit the finished JSON document as base64 console lines. */
static void emit_result(const char *name, const char *doc, size_t n)
{
	char line[160];
	int l = snprintf(line, sizeof(line), "\n@@SMCD-BEGIN %s %zu\n", name, n);
	write_all_fd(1, line, (size_t)l);
	size_t i = 0;
	while (i < n) {
		size_t take = n - i > 57 ? 57 : n - i; /* 57 bytes -> 76 base64 chars */
		char *o = line;
		o += sprintf(o, "@@SMCD-DATA ");
		for (size_t k = 0; k < take; k += 3) {
			const unsigned char *p = (const unsigned char *)doc + i + k;
			uint32_t v = (uint32_t)p[0] << 16;
			if (k + 1 < take)
				v |= (uint32_t)p[1] << 8;
			if (k + 2 < take)
				v |= p[2];
			*o++ = B64[(v >> 18) & 63];
			*o++ = B64[(v >> 12) & 63];
			*o++ = k + 1 < take ? B64[(v >> 6) & 63] : '=';
			*o++ = k + 2 < take ? B64[v & 63] : '=';
		}
		*o++ = '\n';
		write_all_fd(1, line, (size_t)(o - line));
		i += take;
	}
	l = snprintf(line, sizeof(line), "@@SMCD-END %s\n", name);
	write_all_fd(1, line, (size_t)l);
}

/* Notes and the scenario's verdict on what the harness itself could do (not a judgement of
 * the kernel: the host compares with the spec). */
#define MAX_NOTES 64
static char *notes[MAX_NOTES];
static int n_notes;
static char scen_error[512];
/* what the scenario is doing now: reported if it hangs past its timeout */
static const char *volatile step = "start";

static void note(const char *fmt, ...)
{
	if (n_notes >= MAX_NOTES)
		return;
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	notes[n_notes++] = strdup(tmp);
}

static void fail(const char *fmt, ...)
{
	if (scen_error[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(scen_error, sizeof(scen_error), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ capture on lo */

#define SNAPLEN 2048
#define MAX_FRAMES 4096
#define KEEP_PAYLOAD_BYTES 8192 /* per flow direction: enough for CLC and some data */

struct frame {
	uint64_t t_us;
	uint32_t orig_len, cap_len;
	unsigned char *data;
};

struct flow {
	uint16_t sport, dport;
	uint32_t isn;
};

static struct frame frames[MAX_FRAMES];
static int n_frames, frames_dropped;
static struct flow flows[512];
static int n_flows;
static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int cap_stop;
static int cap_fd = -1;
static pthread_t cap_thread;
static uint64_t cap_packets_seen;

static struct flow *flow_find(uint16_t s, uint16_t d)
{
	for (int i = 0; i < n_flows; i++)
		if (flows[i].sport == s && flows[i].dport == d)
			return &flows[i];
	return NULL;
}

/* Keep a frame if it is TCP and either a control segment or within the first
 * KEEP_PAYLOAD_BYTES of its direction's byte stream (the CLC handshake lives there). */
static void cap_consider(const unsigned char *p, size_t n, size_t orig)
{
	if (n < 14)
		return;
	uint16_t et = (uint16_t)(p[12] << 8 | p[13]);
	size_t off = 14;
	size_t ip_payload_len;
	if (et == ETH_P_IP) {
		if (n < off + 20 || p[off + 9] != IPPROTO_TCP)
			return;
		size_t ihl = (size_t)(p[off] & 15) * 4;
		size_t tot = (size_t)(p[off + 2] << 8 | p[off + 3]);
		ip_payload_len = tot - ihl;
		off += ihl;
	} else if (et == ETH_P_IPV6) {
		if (n < off + 40 || p[off + 6] != IPPROTO_TCP)
			return;
		ip_payload_len = (size_t)(p[off + 4] << 8 | p[off + 5]);
		off += 40;
	} else {
		return;
	}
	if (n < off + 20)
		return;
	uint16_t sport = (uint16_t)(p[off] << 8 | p[off + 1]);
	uint16_t dport = (uint16_t)(p[off + 2] << 8 | p[off + 3]);
	uint32_t seq = (uint32_t)p[off + 4] << 24 | (uint32_t)p[off + 5] << 16 |
		       (uint32_t)p[off + 6] << 8 | p[off + 7];
	size_t doff = (size_t)(p[off + 12] >> 4) * 4;
	uint8_t flags = p[off + 13];
	size_t payload = ip_payload_len > doff ? ip_payload_len - doff : 0;
	int keep = 0;
	pthread_mutex_lock(&cap_lock);
	struct flow *f = flow_find(sport, dport);
	if (flags & 0x02) { /* SYN */
		if (!f && n_flows < (int)(sizeof(flows) / sizeof(flows[0])))
			f = &flows[n_flows++];
		if (f) {
			f->sport = sport;
			f->dport = dport;
			f->isn = seq;
		}
		keep = 1;
	} else if (flags & 0x05) { /* FIN or RST */
		keep = 1;
	} else if (!f) {
		keep = payload > 0; /* flow began before the capture: keep data frames */
	} else {
		uint32_t rel = seq - f->isn;
		keep = payload == 0 ? 0 : rel <= KEEP_PAYLOAD_BYTES;
	}
	if (keep) {
		if (n_frames < MAX_FRAMES) {
			struct frame *fr = &frames[n_frames];
			fr->t_us = now_us();
			fr->orig_len = (uint32_t)orig;
			fr->cap_len = (uint32_t)(n < SNAPLEN ? n : SNAPLEN);
			fr->data = malloc(fr->cap_len);
			if (fr->data) {
				memcpy(fr->data, p, fr->cap_len);
				n_frames++;
			}
		} else {
			frames_dropped++;
		}
	}
	pthread_mutex_unlock(&cap_lock);
}

static void *cap_main(void *arg)
{
	(void)arg;
	static unsigned char buf[65536 + 64];
	while (!cap_stop) {
		struct pollfd pfd = { cap_fd, POLLIN, 0 };
		int r = poll(&pfd, 1, 20);
		if (r <= 0)
			continue;
		struct sockaddr_ll sll;
		socklen_t sl = sizeof(sll);
		ssize_t n = recvfrom(cap_fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&sll, &sl);
		if (n < 0)
			continue;
		cap_packets_seen++;
		if (sll.sll_pkttype == PACKET_OUTGOING)
			continue; /* lo shows each frame twice: keep the received copy */
		size_t got = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf);
		cap_consider(buf, got, (size_t)n);
	}
	return NULL;
}

static int cap_start(void)
{
	cap_fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (cap_fd < 0) {
		fail("AF_PACKET socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_ll sll = { 0 };
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)if_nametoindex("lo");
	if (bind(cap_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fail("bind AF_PACKET to lo: %s", strerror(errno));
		return -1;
	}
	int rb = 4 << 20;
	setsockopt(cap_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb));
	cap_stop = 0;
	if (pthread_create(&cap_thread, NULL, cap_main, NULL)) {
		fail("capture thread: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void cap_finish(void)
{
	if (cap_fd < 0)
		return;
	msleep(60); /* let the capture thread drain what the stack already queued */
	cap_stop = 1;
	pthread_join(cap_thread, NULL);
	close(cap_fd);
	cap_fd = -1;
}

static void json_frames(void)
{
	jkey("frames");
	jarr();
	pthread_mutex_lock(&cap_lock);
	for (int i = 0; i < n_frames; i++) {
		jobj();
		kv_uint("t_us", frames[i].t_us);
		kv_uint("orig_len", frames[i].orig_len);
		jkey("data");
		jb64(frames[i].data, frames[i].cap_len);
		jobj_end();
	}
	pthread_mutex_unlock(&cap_lock);
	jarr_end();
	kv_uint("frames_dropped", (uint64_t)frames_dropped);
}

/* ------------------------------------------------------------------ netlink helpers */

static int nl_open(int proto)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return -1;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

#define NLA_ALIGN_(n) (((n) + 3) & ~3u)

static int genl_family_id(int fd, const char *name)
{
	unsigned char buf[8192];
	memset(buf, 0, 256);
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct genlmsghdr *gh = NLMSG_DATA(nh);
	gh->cmd = CTRL_CMD_GETFAMILY;
	gh->version = 1;
	struct nlattr *na = (struct nlattr *)((char *)gh + GENL_HDRLEN);
	na->nla_type = CTRL_ATTR_FAMILY_NAME;
	na->nla_len = (uint16_t)(NLA_HDRLEN + strlen(name) + 1);
	strcpy((char *)na + NLA_HDRLEN, name);
	nh->nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN + NLA_ALIGN_(na->nla_len));
	nh->nlmsg_type = GENL_ID_CTRL;
	nh->nlmsg_flags = NLM_F_REQUEST;
	nh->nlmsg_seq = 1;
	if (send(fd, buf, nh->nlmsg_len, 0) < 0)
		return -1;
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return -1;
	for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (unsigned)n); nh = NLMSG_NEXT(nh, n)) {
		if (nh->nlmsg_type == NLMSG_ERROR)
			return -1;
		gh = NLMSG_DATA(nh);
		int alen = (int)nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
		na = (struct nlattr *)((char *)gh + GENL_HDRLEN);
		while (alen >= NLA_HDRLEN && na->nla_len >= NLA_HDRLEN) {
			if (na->nla_type == CTRL_ATTR_FAMILY_ID)
				return *(uint16_t *)((char *)na + NLA_HDRLEN);
			alen -= (int)NLA_ALIGN_(na->nla_len);
			na = (struct nlattr *)((char *)na + NLA_ALIGN_(na->nla_len));
		}
	}
	return -1;
}

/* Send one SMC generic netlink command; returns 0 or -errno from the kernel's ack. */
static int smc_genl(int cmd, const char *eid)
{
	int fd = nl_open(NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	int fam = genl_family_id(fd, "SMC_GEN_NETLINK");
	if (fam < 0) {
		close(fd);
		return -ENOENT;
	}
	unsigned char buf[512];
	memset(buf, 0, sizeof(buf));
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct genlmsghdr *gh = NLMSG_DATA(nh);
	gh->cmd = (uint8_t)cmd;
	gh->version = 1;
	size_t plen = GENL_HDRLEN;
	if (eid) {
		struct nlattr *na = (struct nlattr *)((char *)gh + GENL_HDRLEN);
		na->nla_type = SMC_NLA_EID_TABLE_ENTRY;
		na->nla_len = NLA_HDRLEN + SMC_MAX_EID_LEN + 1;
		char *d = (char *)na + NLA_HDRLEN;
		memset(d, ' ', SMC_MAX_EID_LEN); /* blank padded, NUL at [32] */
		memcpy(d, eid, strlen(eid));
		d[SMC_MAX_EID_LEN] = 0;
		plen += NLA_ALIGN_(na->nla_len);
	}
	nh->nlmsg_len = NLMSG_LENGTH(plen);
	nh->nlmsg_type = (uint16_t)fam;
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nh->nlmsg_seq = 2;
	if (send(fd, buf, nh->nlmsg_len, 0) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	unsigned char rb[4096];
	ssize_t n = recv(fd, rb, sizeof(rb), 0);
	close(fd);
	if (n < 0)
		return -errno;
	nh = (struct nlmsghdr *)rb;
	if (nh->nlmsg_type == NLMSG_ERROR)
		return ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
	return 0;
}

static int ueid_flush(void) { return smc_genl(SMC_NETLINK_FLUSH_UEID, NULL); }

static int ueid_add(void)
{
	int rc = smc_genl(SMC_NETLINK_ADD_UEID, UEID);
	return rc == -EEXIST ? 0 : rc;
}

/* ------------------------------------------------------------------ smc_diag */

struct diag_rec {
	struct smc_diag_msg_ msg;
	int has_fallback, has_conninfo, has_dmbinfo, has_shutdown;
	uint8_t shutdown;
	struct smc_diag_fallback_ fb;
	struct smc_diag_conninfo_ ci;
	struct smcd_diag_dmbinfo_ dmb;
};

#define MAX_DIAG 64

/* Dump every SMC socket; returns the number of records (or -errno). */
static int diag_dump(struct diag_rec *out, int max)
{
	int fd = nl_open(NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	struct {
		struct nlmsghdr nh;
		struct smc_diag_req_ req;
	} q;
	memset(&q, 0, sizeof(q));
	q.nh.nlmsg_len = sizeof(q);
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.nh.nlmsg_seq = 3;
	q.req.diag_family = AF_SMC_;
	q.req.diag_ext = (1 << (DIAG_CONNINFO - 1)) | (1 << (DIAG_DMBINFO - 1));
	if (send(fd, &q, sizeof(q), 0) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	static unsigned char buf[65536];
	int cnt = 0, done = 0;
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		struct nlmsghdr *nh;
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (unsigned)n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
				done = 1;
				break;
			}
			if (cnt >= max)
				continue;
			struct diag_rec *r = &out[cnt++];
			memset(r, 0, sizeof(*r));
			memcpy(&r->msg, NLMSG_DATA(nh), sizeof(r->msg));
			int alen = (int)nh->nlmsg_len - (int)NLMSG_LENGTH(sizeof(struct smc_diag_msg_));
			struct nlattr *na = (struct nlattr *)((char *)NLMSG_DATA(nh) +
							      NLMSG_ALIGN(sizeof(struct smc_diag_msg_)));
			while (alen >= NLA_HDRLEN && na->nla_len >= NLA_HDRLEN) {
				void *d = (char *)na + NLA_HDRLEN;
				size_t dl = na->nla_len - NLA_HDRLEN;
				switch (na->nla_type) {
				case DIAG_SHUTDOWN:
					r->has_shutdown = 1;
					r->shutdown = *(uint8_t *)d;
					break;
				case DIAG_FALLBACK:
					r->has_fallback = 1;
					memcpy(&r->fb, d, dl < sizeof(r->fb) ? dl : sizeof(r->fb));
					break;
				case DIAG_CONNINFO:
					r->has_conninfo = 1;
					memcpy(&r->ci, d, dl < sizeof(r->ci) ? dl : sizeof(r->ci));
					break;
				case DIAG_DMBINFO:
					r->has_dmbinfo = 1;
					memcpy(&r->dmb, d, dl < sizeof(r->dmb) ? dl : sizeof(r->dmb));
					break;
				}
				alen -= (int)NLA_ALIGN_(na->nla_len);
				na = (struct nlattr *)((char *)na + NLA_ALIGN_(na->nla_len));
			}
		}
	}
	close(fd);
	return cnt;
}

static void json_cursor(const char *k, const struct diag_cursor_ *c)
{
	jkey(k);
	jarr();
	juint(c->wrap);
	juint(c->count);
	jarr_end();
}

static void json_diag_rec(const struct diag_rec *r)
{
	jobj();
	kv_uint("state", r->msg.diag_state);
	kv_uint("mode", r->msg.diag_mode);
	kv_uint("sport", ntohs(r->msg.id.idiag_sport));
	kv_uint("dport", ntohs(r->msg.id.idiag_dport));
	kv_uint("inode", r->msg.diag_inode);
	if (r->has_shutdown)
		kv_uint("shutdown", r->shutdown);
	if (r->has_fallback) {
		jkey("fallback");
		jobj();
		kv_uint("reason", r->fb.reason);
		kv_uint("peer_diagnosis", r->fb.peer_diagnosis);
		jobj_end();
	}
	if (r->has_conninfo) {
		const struct smc_diag_conninfo_ *c = &r->ci;
		jkey("conninfo");
		jobj();
		kv_uint("token", c->token);
		kv_uint("sndbuf_size", c->sndbuf_size);
		kv_uint("rmbe_size", c->rmbe_size);
		kv_uint("peer_rmbe_size", c->peer_rmbe_size);
		json_cursor("rx_prod", &c->rx_prod);
		json_cursor("rx_cons", &c->rx_cons);
		json_cursor("tx_prod", &c->tx_prod);
		json_cursor("tx_cons", &c->tx_cons);
		kv_uint("rx_prod_flags", c->rx_prod_flags);
		kv_uint("rx_conn_state_flags", c->rx_conn_state_flags);
		kv_uint("tx_prod_flags", c->tx_prod_flags);
		kv_uint("tx_conn_state_flags", c->tx_conn_state_flags);
		json_cursor("tx_prep", &c->tx_prep);
		json_cursor("tx_sent", &c->tx_sent);
		json_cursor("tx_fin", &c->tx_fin);
		jobj_end();
	}
	if (r->has_dmbinfo) {
		const struct smcd_diag_dmbinfo_ *d = &r->dmb;
		jkey("dmbinfo");
		jobj();
		kv_uint("linkid", d->linkid);
		kv_uint("peer_gid", d->peer_gid);
		kv_uint("my_gid", d->my_gid);
		kv_uint("token", d->token);
		kv_uint("peer_token", d->peer_token);
		kv_uint("peer_gid_ext", d->peer_gid_ext);
		kv_uint("my_gid_ext", d->my_gid_ext);
		jobj_end();
	}
	jobj_end();
}

/* A "view": every diag record whose TCP ports touch `port` (both ends of a connection on lo),
 * labelled. Listening sockets (state SMC_LISTEN) are skipped. */
static void json_diag_view(const char *label, uint16_t port)
{
	static struct diag_rec recs[MAX_DIAG];
	int n = diag_dump(recs, MAX_DIAG);
	jobj();
	kv_str("label", label);
	kv_uint("t_us", now_us());
	jkey("socks");
	jarr();
	for (int i = 0; i < n; i++) {
		uint16_t s = ntohs(recs[i].msg.id.idiag_sport), d = ntohs(recs[i].msg.id.idiag_dport);
		if ((s == port || d == port) && recs[i].msg.diag_state != 10)
			json_diag_rec(&recs[i]);
	}
	jarr_end();
	if (n < 0)
		kv_int("errno", -n);
	jobj_end();
}

/* ------------------------------------------------------------------ sockets */

struct addr {
	int v6;
	struct sockaddr_storage ss;
	socklen_t len;
};

/* The address is built in a typed local and copied into the storage: stores through a
 * (struct sockaddr_in *) cast of a.ss break C's aliasing rules, and gcc -O2 dropped them once
 * the function was inlined into a caller (the SMC connect() then saw family 0: EINVAL or
 * ECONNREFUSED). */
static struct addr mkaddr(int v6, uint16_t port)
{
	struct addr a;
	memset(&a, 0, sizeof(a));
	a.v6 = v6;
	if (v6) {
		struct sockaddr_in6 s;
		memset(&s, 0, sizeof(s));
		s.sin6_family = AF_INET6;
		s.sin6_port = htons(port);
		s.sin6_addr = in6addr_loopback;
		memcpy(&a.ss, &s, sizeof(s));
		a.len = sizeof(s);
	} else {
		struct sockaddr_in s;
		memset(&s, 0, sizeof(s));
		s.sin_family = AF_INET;
		s.sin_port = htons(port);
		s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		memcpy(&a.ss, &s, sizeof(s));
		a.len = sizeof(s);
	}
	return a;
}

enum kind { K_SMC, K_TCP };

static int mksock(enum kind k, int v6)
{
	int fd;
	if (k == K_SMC)
		fd = socket(AF_SMC_, SOCK_STREAM | SOCK_CLOEXEC, v6 ? SMCPROTO_SMC6 : SMCPROTO_SMC);
	else
		fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket(%s): %s", k == K_SMC ? "AF_SMC" : "AF_INET", strerror(errno));
	return fd;
}

static void set_bufs(int fd, int rcv, int snd)
{
	if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) < 0)
		note("SO_RCVBUF %d: %s", rcv, strerror(errno));
	if (snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) < 0)
		note("SO_SNDBUF %d: %s", snd, strerror(errno));
}

static int server(enum kind k, int v6, uint16_t port, int backlog, int rcv, int snd)
{
	int fd = mksock(k, v6);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	set_bufs(fd, rcv, snd);
	struct addr a = mkaddr(v6, port);
	if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
		fail("bind port %u: %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, backlog) < 0) {
		fail("listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int client(enum kind k, int v6, uint16_t port, int rcv, int snd)
{
	int fd = mksock(k, v6);
	if (fd < 0)
		return -1;
	set_bufs(fd, rcv, snd);
	struct addr a = mkaddr(v6, port);
	if (connect(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
		fail("connect port %u: %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int accept_to(int lfd, int ms)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	if (poll(&p, 1, ms) <= 0) {
		fail("accept: nothing within %d ms", ms);
		return -1;
	}
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		fail("accept: %s", strerror(errno));
	return fd;
}

static ssize_t send_all(int fd, const void *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = send(fd, (const char *)p + done, n - done, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* Read exactly n bytes (or until EOF / error / timeout). */
static ssize_t recv_n(int fd, void *p, size_t n, int ms)
{
	size_t done = 0;
	while (done < n) {
		struct pollfd pf = { fd, POLLIN, 0 };
		if (poll(&pf, 1, ms) <= 0)
			break;
		ssize_t r = recv(fd, (char *)p + done, n - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return done ? (ssize_t)done : r;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* One request/response exchange carrying a marker string, so the host can tell whether the
 * payload went through TCP (it appears on lo) or through the DMB (it does not). */
static void exchange_marker(int cfd, int sfd, const char *tag)
{
	char m[64], r[64];
	int l = snprintf(m, sizeof(m), "SMCD-CHECK-MARKER-%s-C2S", tag);
	jkey("marker_c2s");
	jstr(m);
	if (send_all(cfd, m, (size_t)l) != l)
		fail("marker send c2s: %s", strerror(errno));
	memset(r, 0, sizeof(r));
	ssize_t got = recv_n(sfd, r, (size_t)l, 5000);
	kv_bool("marker_c2s_ok", got == l && !memcmp(m, r, (size_t)l));
	l = snprintf(m, sizeof(m), "SMCD-CHECK-MARKER-%s-S2C", tag);
	jkey("marker_s2c");
	jstr(m);
	if (send_all(sfd, m, (size_t)l) != l)
		fail("marker send s2c: %s", strerror(errno));
	memset(r, 0, sizeof(r));
	got = recv_n(cfd, r, (size_t)l, 5000);
	kv_bool("marker_s2c_ok", got == l && !memcmp(m, r, (size_t)l));
}

/* ------------------------------------------------------------------ data transfer */

#define PATTERN_LEN 65521 /* prime: never aligned with a power-of-two buffer */
static unsigned char pattern[2 * PATTERN_LEN + 262144];

static void pattern_init(uint64_t seed)
{
	uint64_t s = seed | 1;
	for (size_t i = 0; i < PATTERN_LEN; i++)
		pattern[i] = (unsigned char)(rng_next(&s) >> 56);
	for (size_t i = PATTERN_LEN; i < sizeof(pattern); i++) /* period PATTERN_LEN */
		pattern[i] = pattern[i - PATTERN_LEN];
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

struct xfer_dir {
	const char *name;
	int wfd, rfd;
	uint64_t total;
	uint64_t seed;
	size_t max_chunk;
	int checksum; /* compute FNV-1a 64 on both ends (small transfers only) */
	/* results */
	volatile uint64_t sent, received;
	uint64_t w_sum, r_sum;
	int64_t mismatch_at;
	int w_errno, r_errno;
	uint64_t t_start, t_end;
	uint64_t chunks_w, chunks_r;
};

static void *xfer_writer(void *arg)
{
	struct xfer_dir *x = arg;
	uint64_t s = x->seed * 2654435761u + 1;
	x->w_sum = 0xcbf29ce484222325ULL;
	while (x->sent < x->total) {
		size_t chunk = 1 + (size_t)(rng_next(&s) % x->max_chunk);
		if (chunk > x->total - x->sent)
			chunk = (size_t)(x->total - x->sent);
		const unsigned char *p = pattern + (x->sent % PATTERN_LEN);
		ssize_t w = send(x->wfd, p, chunk, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			x->w_errno = errno;
			break;
		}
		if (x->checksum)
			x->w_sum = fnv1a(x->w_sum, p, (size_t)w);
		x->sent += (uint64_t)w;
		x->chunks_w++;
	}
	return NULL;
}

static void *xfer_reader(void *arg)
{
	struct xfer_dir *x = arg;
	static __thread unsigned char buf[262144];
	uint64_t s = x->seed * 40503u + 7;
	x->r_sum = 0xcbf29ce484222325ULL;
	x->mismatch_at = -1;
	while (x->received < x->total) {
		size_t chunk = 1 + (size_t)(rng_next(&s) % x->max_chunk);
		if (chunk > sizeof(buf))
			chunk = sizeof(buf);
		if (chunk > x->total - x->received)
			chunk = (size_t)(x->total - x->received);
		ssize_t r = recv(x->rfd, buf, chunk, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			x->r_errno = r < 0 ? errno : 0;
			break;
		}
		if (x->mismatch_at < 0 &&
		    memcmp(buf, pattern + (x->received % PATTERN_LEN), (size_t)r)) {
			const unsigned char *e = pattern + (x->received % PATTERN_LEN);
			for (ssize_t i = 0; i < r; i++)
				if (buf[i] != e[i]) {
					x->mismatch_at = (int64_t)(x->received + (uint64_t)i);
					break;
				}
		}
		if (x->checksum)
			x->r_sum = fnv1a(x->r_sum, buf, (size_t)r);
		x->received += (uint64_t)r;
		x->chunks_r++;
	}
	x->t_end = now_us();
	return NULL;
}

/* Run up to two directions at once while the main thread takes diag snapshots every
 * snap_ms (at most max_snaps). */
static void run_transfer(struct xfer_dir *dirs, int nd, uint16_t port, unsigned snap_ms,
			 int max_snaps, int timeout_s)
{
	pthread_t th[4];
	uint64_t t0 = now_us();
	for (int i = 0; i < nd; i++) {
		dirs[i].t_start = t0;
		pthread_create(&th[2 * i], NULL, xfer_writer, &dirs[i]);
		pthread_create(&th[2 * i + 1], NULL, xfer_reader, &dirs[i]);
	}
	jkey("snapshots");
	jarr();
	int snaps = 0;
	for (;;) {
		int busy = 0;
		for (int i = 0; i < nd; i++)
			if (dirs[i].received < dirs[i].total && !dirs[i].r_errno && !dirs[i].w_errno &&
			    !(dirs[i].t_end))
				busy = 1;
		if (!busy)
			break;
		if (now_us() - t0 > (uint64_t)timeout_s * 1000000u) {
			fail("transfer did not finish within %d s", timeout_s);
			break;
		}
		msleep(snap_ms);
		if (snaps < max_snaps) {
			char lab[64];
			snprintf(lab, sizeof(lab), "during-%d", snaps);
			json_diag_view(lab, port);
			snaps++;
		}
	}
	jarr_end();
	for (int i = 0; i < nd; i++) {
		if (scen_error[0]) { /* unblock threads stuck in send/recv */
			shutdown(dirs[i].wfd, SHUT_RDWR);
			shutdown(dirs[i].rfd, SHUT_RDWR);
		}
		pthread_join(th[2 * i], NULL);
		pthread_join(th[2 * i + 1], NULL);
	}
	jkey("transfers");
	jarr();
	for (int i = 0; i < nd; i++) {
		struct xfer_dir *x = &dirs[i];
		jobj();
		kv_str("dir", x->name);
		kv_uint("total", x->total);
		kv_uint("sent", x->sent);
		kv_uint("received", x->received);
		kv_uint("seed", x->seed);
		kv_uint("max_chunk", x->max_chunk);
		kv_uint("chunks_written", x->chunks_w);
		kv_uint("chunks_read", x->chunks_r);
		kv_int("mismatch_at", x->mismatch_at);
		if (x->checksum) {
			char h[40];
			snprintf(h, sizeof(h), "%016llx", (unsigned long long)x->w_sum);
			kv_str("checksum_sent", h);
			snprintf(h, sizeof(h), "%016llx", (unsigned long long)x->r_sum);
			kv_str("checksum_received", h);
		}
		kv_int("write_errno", x->w_errno);
		kv_int("read_errno", x->r_errno);
		kv_uint("elapsed_us", (x->t_end ? x->t_end : now_us()) - x->t_start);
		jobj_end();
		if (x->received != x->total || x->mismatch_at >= 0 ||
		    (x->checksum && x->w_sum != x->r_sum))
			fail("transfer %s: received %llu of %llu, mismatch at %lld", x->name,
			     (unsigned long long)x->received, (unsigned long long)x->total,
			     (long long)x->mismatch_at);
	}
	jarr_end();
}

/* ------------------------------------------------------------------ scenarios */

struct scen {
	const char *name;
	const char *doc;
	int timeout_s;
	void (*fn)(uint16_t port);
};

/* Records an errno-like outcome of a syscall as data. */
static void kv_rc(const char *k, int rc)
{
	jkey(k);
	jobj();
	kv_int("rc", rc < 0 ? -1 : rc);
	kv_str("err", rc < 0 ? strerror(errno) : "");
	kv_int("errno", rc < 0 ? errno : 0);
	jobj_end();
}

/* A plain handshake: server kind sk, client kind ck, optional UEID, marker exchange, diag
 * while open and after both close. */
static void handshake_common(uint16_t port, enum kind sk, enum kind ck, int with_ueid, int v6,
			     int crcv, int srcv, int conns)
{
	int rc = with_ueid ? ueid_add() : ueid_flush();
	kv_int(with_ueid ? "ueid_add_rc" : "ueid_flush_rc", rc);
	if (with_ueid)
		kv_str("ueid", UEID);
	int lfd = server(sk, v6, port, 16, srcv, 0);
	if (lfd < 0)
		return;
	int cfd[4] = { -1, -1, -1, -1 }, sfd[4] = { -1, -1, -1, -1 };
	jkey("connections");
	jarr();
	for (int i = 0; i < conns; i++) {
		jobj();
		cfd[i] = client(ck, v6, port, crcv, 0);
		if (cfd[i] < 0) {
			jobj_end();
			break;
		}
		sfd[i] = accept_to(lfd, 5000);
		if (sfd[i] < 0) {
			jobj_end();
			break;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		getsockname(cfd[i], (struct sockaddr *)&ss, &sl);
		kv_uint("client_port", ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port));
		char tag[16];
		snprintf(tag, sizeof(tag), "%d", i);
		exchange_marker(cfd[i], sfd[i], tag);
		jobj_end();
	}
	jarr_end();
	jkey("diag");
	jarr();
	json_diag_view("open", port);
	for (int i = 0; i < conns; i++) {
		if (cfd[i] >= 0)
			close(cfd[i]);
		if (sfd[i] >= 0)
			close(sfd[i]);
	}
	msleep(50);
	json_diag_view("closed", port);
	jarr_end();
	close(lfd);
}

static void sc_noueid(uint16_t port) { handshake_common(port, K_SMC, K_SMC, 0, 0, 0, 0, 1); }
static void sc_smcd(uint16_t port) { handshake_common(port, K_SMC, K_SMC, 1, 0, 0, 0, 1); }
static void sc_reuse(uint16_t port) { handshake_common(port, K_SMC, K_SMC, 1, 0, 0, 0, 3); }
static void sc_tcp_server(uint16_t port) { handshake_common(port, K_TCP, K_SMC, 1, 0, 0, 0, 1); }
static void sc_tcp_client(uint16_t port) { handshake_common(port, K_SMC, K_TCP, 1, 0, 0, 0, 1); }
static void sc_ipv6(uint16_t port) { handshake_common(port, K_SMC, K_SMC, 1, 1, 0, 0, 1); }
static void sc_bufsizes(uint16_t port)
{
	/* client asks for a 16 KiB DMB (SO_RCVBUF 16384 -> sk_rcvbuf 32768 -> /2), server 256 KiB */
	handshake_common(port, K_SMC, K_SMC, 1, 0, 16384, 262144, 1);
}

/* TCP_FASTOPEN_CONNECT before connect: SMC does not support it and falls back before CLC. */
static void sc_fastopen(uint16_t port)
{
	kv_int("ueid_add_rc", ueid_add());
	int lfd = server(K_SMC, 0, port, 16, 0, 0);
	if (lfd < 0)
		return;
	int cfd = mksock(K_SMC, 0);
	int one = 1;
	kv_rc("setsockopt_fastopen_connect",
	      setsockopt(cfd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)));
	struct addr a = mkaddr(0, port);
	kv_rc("connect", connect(cfd, (struct sockaddr *)&a.ss, a.len));
	int sfd = accept_to(lfd, 5000);
	if (sfd >= 0)
		exchange_marker(cfd, sfd, "fo");
	jkey("diag");
	jarr();
	json_diag_view("open", port);
	jarr_end();
	close(cfd);
	if (sfd >= 0)
		close(sfd);
	close(lfd);
}

/* smc_setsockopt (6.12) switches on the option number without checking the level, and
 * SO_RCVBUFFORCE (33) has the number of TCP_FASTOPEN_KEY. It is harmless only because
 * SOL_SOCKET options never reach smc_setsockopt (__sys_setsockopt handles them in
 * sock_setsockopt): this scenario pins that a SOL_SOCKET option numbered like a TCP fast-open
 * option does not make an SMC socket fall back. */
static void sc_sockopt_level(uint16_t port)
{
	kv_int("ueid_add_rc", ueid_add());
	int lfd = server(K_SMC, 0, port, 16, 0, 0);
	if (lfd < 0)
		return;
	int cfd = mksock(K_SMC, 0);
	int v = 65536;
	kv_rc("setsockopt_so_rcvbufforce", setsockopt(cfd, SOL_SOCKET, SO_RCVBUFFORCE, &v,
						     sizeof(v)));
	struct addr a = mkaddr(0, port);
	kv_rc("connect", connect(cfd, (struct sockaddr *)&a.ss, a.len));
	int sfd = accept_to(lfd, 3000);
	jkey("connections");
	jarr();
	if (sfd >= 0) {
		jobj();
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		getsockname(cfd, (struct sockaddr *)&ss, &sl);
		kv_uint("client_port", ntohs(((struct sockaddr_in *)&ss)->sin_port));
		exchange_marker(cfd, sfd, "so33");
		jobj_end();
	}
	jarr_end();
	jkey("diag");
	jarr();
	json_diag_view("open", port);
	jarr_end();
	/* the same option on a listening socket: setsockopt fails although TCP took it */
	int v2 = 65536;
	kv_rc("listen_setsockopt_so_rcvbufforce",
	      setsockopt(lfd, SOL_SOCKET, SO_RCVBUFFORCE, &v2, sizeof(v2)));
	close(cfd);
	if (sfd >= 0)
		close(sfd);
	close(lfd);
	scen_error[0] = 0; /* a refused connect is an observation here, not a harness error */
}

/* Non-blocking connect, closed at once (before the CLC handshake can finish). */
static void sc_abort_handshake(uint16_t port)
{
	kv_int("ueid_add_rc", ueid_add());
	int lfd = server(K_SMC, 0, port, 16, 0, 0);
	if (lfd < 0)
		return;
	int cfd = mksock(K_SMC, 0);
	fcntl(cfd, F_SETFL, O_NONBLOCK);
	struct addr a = mkaddr(0, port);
	step = "non-blocking connect";
	kv_rc("connect", connect(cfd, (struct sockaddr *)&a.ss, a.len));
	step = "close right after connect";
	kv_rc("close", close(cfd));
	step = "after close";
	msleep(200);
	jkey("diag");
	jarr();
	json_diag_view("after-client-close", port);
	jarr_end();
	/* what does the listener hand out? */
	struct pollfd p = { lfd, POLLIN, 0 };
	step = "poll listener";
	int ready = poll(&p, 1, 500);
	kv_int("listener_readable", ready);
	if (ready > 0) {
		/*
		 * The listener can turn readable while the SMC listen work is still waiting for a
		 * Proposal the closed client will never send (up to CLC_WAIT_TIME, 6 s); a blocking
		 * accept() then hangs on timing alone. Accept non-blocking, retrying for 8 s, and
		 * record what happened as an observation.
		 */
		step = "accept";
		fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
		int sfd = -1, waited = 0;
		for (;;) {
			sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (sfd >= 0 || errno != EAGAIN || waited >= 8000)
				break;
			poll(&p, 1, 100);
			waited += 100;
		}
		kv_rc("accept", sfd);
		kv_int("accept_waited_ms", waited);
		if (sfd >= 0) {
			jkey("diag_accepted");
			jarr();
			json_diag_view("accepted", port);
			jarr_end();
			char b[16];
			step = "server recv (non-blocking)";
			kv_rc("server_recv", (int)recv(sfd, b, sizeof(b), MSG_DONTWAIT));
			close(sfd);
		}
	}
	close(lfd);
}

/* Listen backlog 1, four clients connect (non-blocking) before any accept. */
static void sc_backlog(uint16_t port)
{
	kv_int("ueid_add_rc", ueid_add());
	int lfd = server(K_SMC, 0, port, 1, 0, 0);
	if (lfd < 0)
		return;
	int c[4];
	jkey("connects");
	jarr();
	for (int i = 0; i < 4; i++) {
		c[i] = mksock(K_SMC, 0);
		fcntl(c[i], F_SETFL, O_NONBLOCK);
		struct addr a = mkaddr(0, port);
		jobj();
		kv_rc("connect", connect(c[i], (struct sockaddr *)&a.ss, a.len));
		jobj_end();
	}
	jarr_end();
	msleep(1500);
	jkey("connect_results");
	jarr();
	for (int i = 0; i < 4; i++) {
		struct pollfd p = { c[i], POLLOUT, 0 };
		int r = poll(&p, 1, 1000);
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(c[i], SOL_SOCKET, SO_ERROR, &err, &el);
		jobj();
		kv_int("poll", r);
		kv_int("revents", p.revents);
		kv_int("so_error", err);
		jobj_end();
	}
	jarr_end();
	int acc = 0, s[8];
	for (; acc < 8; acc++) {
		struct pollfd p = { lfd, POLLIN, 0 };
		if (poll(&p, 1, 1000) <= 0)
			break;
		s[acc] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (s[acc] < 0)
			break;
	}
	kv_int("accepted", acc);
	jkey("diag");
	jarr();
	json_diag_view("after-accept", port);
	jarr_end();
	for (int i = 0; i < acc; i++)
		close(s[i]);
	for (int i = 0; i < 4; i++)
		close(c[i]);
	close(lfd);
}

/* Connected SMC-D pair with chosen buffer sizes (SO_RCVBUF/SO_SNDBUF on both ends). */
static int smcd_pair(uint16_t port, int bufs, int *cfd, int *sfd)
{
	kv_int("ueid_add_rc", ueid_add());
	int lfd = server(K_SMC, 0, port, 16, bufs, bufs);
	if (lfd < 0)
		return -1;
	*cfd = client(K_SMC, 0, port, bufs, bufs);
	*sfd = *cfd >= 0 ? accept_to(lfd, 5000) : -1;
	close(lfd);
	return *cfd >= 0 && *sfd >= 0 ? 0 : -1;
}

static void data_common(uint16_t port, int bufs, uint64_t c2s, uint64_t s2c, size_t max_chunk,
			uint64_t seed, unsigned snap_ms, int max_snaps, int timeout_s, int checksum)
{
	int cfd, sfd;
	kv_int("bufs", bufs);
	if (smcd_pair(port, bufs, &cfd, &sfd) < 0)
		return;
	pattern_init(seed);
	jkey("diag");
	jarr();
	json_diag_view("before", port);
	jarr_end();
	struct xfer_dir d[2];
	memset(d, 0, sizeof(d));
	int nd = 0;
	if (c2s) {
		d[nd] = (struct xfer_dir){ .name = "c2s", .wfd = cfd, .rfd = sfd, .total = c2s,
					   .seed = seed, .max_chunk = max_chunk, .checksum = checksum };
		nd++;
	}
	if (s2c) {
		d[nd] = (struct xfer_dir){ .name = "s2c", .wfd = sfd, .rfd = cfd, .total = s2c,
					   .seed = seed + 1, .max_chunk = max_chunk,
					   .checksum = checksum };
		nd++;
	}
	run_transfer(d, nd, port, snap_ms, max_snaps, timeout_s);
	jkey("diag_after");
	jarr();
	json_diag_view("after", port);
	jarr_end();
	close(cfd);
	close(sfd);
}

static void sc_data(uint16_t port)
{
	/* 64 KiB DMBs (default), 3 MiB each way at once, chunks 1..96 KiB */
	data_common(port, 0, 3u << 20, 3u << 20, 98304, 0x5eed01, 15, 200, 120, 1);
}

static void sc_data_small(uint16_t port)
{
	/* 16 KiB DMBs, 2 MiB each way, chunks 1..40000: many wraps of the ring */
	data_common(port, 16384, 2u << 20, 2u << 20, 40000, 0x5eed02, 10, 250, 120, 1);
}

static void sc_data_oneway(uint16_t port)
{
	/* 16 KiB DMBs, one direction, tiny chunks (1..700): many small CDC updates */
	data_common(port, 16384, 1u << 20, 0, 700, 0x5eed03, 10, 150, 120, 1);
}

/* The 16-bit wrap counter past 0xffff: more than 65536 * 16352 bytes through a 16 KiB DMB. */
static void sc_wrap(uint16_t port)
{
	uint64_t total = 65537ULL * 16352ULL + 1234567ULL;
	data_common(port, 16384, total, 0, 262144, 0x5eed04, 2000, 400, 3000, 0);
}

/* Closing scenarios: transfer a little, then act, with diag before and after. */
enum close_kind { CL_CLOSE, CL_SHUT_WR, CL_SHUT_RD, CL_SHUT_RDWR, CL_ABORT_UNREAD, CL_LINGER0 };

static void close_common(uint16_t port, int actor_is_client, enum close_kind how)
{
	int cfd, sfd;
	if (smcd_pair(port, 0, &cfd, &sfd) < 0)
		return;
	int a = actor_is_client ? cfd : sfd, p = actor_is_client ? sfd : cfd;
	kv_str("actor", actor_is_client ? "client" : "server");
	char buf[8192];
	memset(buf, 'x', sizeof(buf));
	/* some traffic both ways first so the cursors are not all zero */
	send_all(a, buf, 3000);
	recv_n(p, buf, 3000, 2000);
	send_all(p, buf, 5000);
	if (how != CL_ABORT_UNREAD)
		recv_n(a, buf, 5000, 2000);
	else
		msleep(50); /* actor leaves the 5000 bytes unread */
	jkey("diag");
	jarr();
	json_diag_view("before", port);
	int rc = 0;
	switch (how) {
	case CL_CLOSE:
	case CL_ABORT_UNREAD:
		rc = close(a);
		a = -1;
		break;
	case CL_SHUT_WR:
		rc = shutdown(a, SHUT_WR);
		break;
	case CL_SHUT_RD:
		rc = shutdown(a, SHUT_RD);
		break;
	case CL_SHUT_RDWR:
		rc = shutdown(a, SHUT_RDWR);
		break;
	case CL_LINGER0: {
		struct linger lg = { 1, 0 };
		setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		rc = close(a);
		a = -1;
		break;
	}
	}
	msleep(100);
	json_diag_view("after-action", port);
	jarr_end();
	kv_rc("action_rc", rc);
	/* what the peer sees */
	struct pollfd pf = { p, POLLIN | POLLOUT, 0 };
	int pr = poll(&pf, 1, 1000);
	kv_int("peer_poll", pr);
	kv_int("peer_revents", pf.revents);
	errno = 0;
	ssize_t r = recv(p, buf, sizeof(buf), MSG_DONTWAIT);
	kv_rc("peer_recv", (int)r);
	errno = 0;
	ssize_t w = send(p, buf, 100, MSG_NOSIGNAL | MSG_DONTWAIT);
	kv_rc("peer_send", (int)w);
	if (a >= 0) {
		/* after a half close, can the actor still move data the other way? */
		errno = 0;
		ssize_t ar = recv(a, buf, sizeof(buf), MSG_DONTWAIT);
		kv_rc("actor_recv", (int)ar);
		errno = 0;
		ssize_t aw = send(a, buf, 100, MSG_NOSIGNAL | MSG_DONTWAIT);
		kv_rc("actor_send", (int)aw);
	}
	msleep(100);
	jkey("diag_after_peer");
	jarr();
	json_diag_view("after-peer-io", port);
	close(p);
	msleep(100);
	json_diag_view("peer-closed", port);
	if (a >= 0) {
		close(a);
		msleep(100);
		json_diag_view("both-closed", port);
	}
	jarr_end();
}

static void sc_close_client(uint16_t p) { close_common(p, 1, CL_CLOSE); }
static void sc_close_server(uint16_t p) { close_common(p, 0, CL_CLOSE); }
static void sc_shutwr_client(uint16_t p) { close_common(p, 1, CL_SHUT_WR); }
static void sc_shutwr_server(uint16_t p) { close_common(p, 0, CL_SHUT_WR); }
static void sc_shutrd_client(uint16_t p) { close_common(p, 1, CL_SHUT_RD); }
static void sc_shutrdwr_client(uint16_t p) { close_common(p, 1, CL_SHUT_RDWR); }
static void sc_abort_client(uint16_t p) { close_common(p, 1, CL_ABORT_UNREAD); }
static void sc_abort_server(uint16_t p) { close_common(p, 0, CL_ABORT_UNREAD); }
static void sc_linger0_client(uint16_t p) { close_common(p, 1, CL_LINGER0); }

static const struct scen SCENS[] = {
	{ "noueid", "no UEID: server declines 0x03030008 (NOUEID), both fall back", 30, sc_noueid },
	{ "smcd", "with a UEID: SMC-Dv2 handshake over loopback-ism", 30, sc_smcd },
	{ "reuse", "three connections: the later ones reuse the link group", 30, sc_reuse },
	{ "tcp-server", "SMC client, plain TCP server: client falls back (no SMC option)", 30,
	  sc_tcp_server },
	{ "tcp-client", "plain TCP client, SMC server: server falls back", 30, sc_tcp_client },
	{ "ipv6", "SMC-D over ::1", 30, sc_ipv6 },
	{ "bufsizes", "client 16 KiB DMB, server 256 KiB DMB", 30, sc_bufsizes },
	{ "fastopen", "TCP_FASTOPEN_CONNECT on the client: fallback before CLC", 30, sc_fastopen },
	{ "sockopt-level", "SOL_SOCKET SO_RCVBUFFORCE (33 = TCP_FASTOPEN_KEY) before connect", 30,
	  sc_sockopt_level },
	{ "abort-handshake", "non-blocking connect closed at once", 20, sc_abort_handshake },
	{ "backlog", "listen backlog 1, four clients before any accept", 30, sc_backlog },
	{ "data", "3 MiB each way at once, 64 KiB DMBs, random chunks, cursor snapshots", 150,
	  sc_data },
	{ "data-small", "2 MiB each way at once, 16 KiB DMBs, random chunks", 150, sc_data_small },
	{ "data-oneway", "1 MiB one way, 16 KiB DMBs, chunks of 1..700 bytes", 150,
	  sc_data_oneway },
	{ "close-client", "client closes after traffic", 30, sc_close_client },
	{ "close-server", "server closes after traffic", 30, sc_close_server },
	{ "shutwr-client", "client shutdown(SHUT_WR)", 30, sc_shutwr_client },
	{ "shutwr-server", "server shutdown(SHUT_WR)", 30, sc_shutwr_server },
	{ "shutrd-client", "client shutdown(SHUT_RD)", 30, sc_shutrd_client },
	{ "shutrdwr-client", "client shutdown(SHUT_RDWR)", 30, sc_shutrdwr_client },
	{ "abort-client", "client closes with unread data (peer_conn_abort)", 30,
	  sc_abort_client },
	{ "abort-server", "server closes with unread data (peer_conn_abort)", 30,
	  sc_abort_server },
	{ "linger0-client", "client SO_LINGER 0 then close", 30, sc_linger0_client },
	{ "wrap", "16-bit wrap counter past 0xffff: ~1.07 GB through a 16 KiB DMB (slow)", 3300,
	  sc_wrap },
};

#define N_SCENS (int)(sizeof(SCENS) / sizeof(SCENS[0]))

static void run_child(const struct scen *s, uint16_t port)
{
	J.len = 0;
	J.depth = 0;
	J.after_key = 0;
	jobj();
	kv_str("name", s->name);
	kv_uint("port", port);
	kv_uint("t_start_us", now_us());
	cap_start();
	msleep(20);
	s->fn(port);
	cap_finish();
	json_frames();
	kv_uint("t_end_us", now_us());
	jkey("notes");
	jarr();
	for (int i = 0; i < n_notes; i++)
		jstr(notes[i]);
	jarr_end();
	kv_str("error", scen_error);
	jobj_end();
	emit_result(s->name, J.buf, J.len);
}

static void emit_failure(const char *name, const char *why);
static const char *cur_name = "";

static void on_alarm(int sig)
{
	(void)sig;
	char why[256];
	snprintf(why, sizeof(why), "scenario timed out (harness watchdog) during: %s", step);
	emit_failure(cur_name, why);
	_exit(0);
}

static void emit_failure(const char *name, const char *why)
{
	J.len = 0;
	J.depth = 0;
	J.after_key = 0;
	jobj();
	kv_str("name", name);
	kv_str("error", why);
	jobj_end();
	emit_result(name, J.buf, J.len);
}

static void run_one(const struct scen *s, uint16_t port)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		cur_name = s->name;
		signal(SIGALRM, on_alarm);
		alarm((unsigned)s->timeout_s); /* reports the step it hung in */
		run_child(s, port);
		_exit(0);
	}
	if (pid < 0) {
		emit_failure(s->name, "fork failed");
		return;
	}
	uint64_t deadline = now_us() + (uint64_t)(s->timeout_s + 5) * 1000000u;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				char why[96];
				snprintf(why, sizeof(why), "harness child died (status 0x%x)", st);
				emit_failure(s->name, why);
			}
			return;
		}
		if (now_us() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			char why[96];
			snprintf(why, sizeof(why), "scenario timed out after %d s", s->timeout_s);
			emit_failure(s->name, why);
			return;
		}
		msleep(20);
	}
}

/* ------------------------------------------------------------------ serve mode
 *
 * `smcd-harness --serve`: a command loop on stdin (the serial console, put in raw mode) for
 * the conformance target (conformance/kernel/target.py). One command per line, one reply line
 * "@@SMCD-R ok key=value ..." or "@@SMCD-R err ERRNO detail". Handles are small integers;
 * a handle closed by "close" answers EBADF afterwards.
 *
 *   reset                       close every connection
 *   open DMB_SIZE               connected SMC-D pair (SO_RCVBUF = DMB_SIZE on both ends)
 *   send H HEX                  one non-blocking send(2); n=bytes accepted
 *   recv H MAX                  one non-blocking recv(2); data=HEX eof=0|1
 *   shutdown H | close H        shutdown(SHUT_WR) | close(2)
 *   curs H                      smc_diag cursors of H plus SIOCINQ / SIOCOUTQ
 *   openurg DMB_SIZE START      as open, then START bytes of plain traffic each way, read and
 *                               confirmed (every cursor moved on; urg_curs untouched)
 *   sendoob H HEX               one non-blocking send(2) with MSG_OOB
 *   recvoob H MAX               one non-blocking recv(2) with MSG_OOB (one byte at most)
 *   atmark H                    ioctl(SIOCATMARK): atmark=0|1
 *   oobinline H 0|1             setsockopt(SOL_SOCKET, SO_OOBINLINE)
 */
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <termios.h>

#define MAX_HANDLES 256
static int h_fd[MAX_HANDLES];
static int n_handles;
static uint16_t serve_port = 21000;

static const char *errname(int e)
{
	switch (e) {
	case EAGAIN: return "EAGAIN";
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	case ECONNABORTED: return "ECONNABORTED";
	case EBADF: return "EBADF";
	case ENOTCONN: return "ENOTCONN";
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case ENOBUFS: return "ENOBUFS";
	case ETIMEDOUT: return "ETIMEDOUT";
	default: return "EIO";
	}
}

static char *reply_buf;
static size_t reply_cap;

static void reply(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(reply_buf, reply_cap, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	write_all_fd(1, reply_buf, strlen(reply_buf));
}

static int handle_fd(const char *arg)
{
	int h = atoi(arg);
	if (h < 0 || h >= n_handles)
		return -2;
	return h_fd[h];
}

static void settle(void)
{
	msleep(3); /* let the CDC tasklet and tx worker of the peer run (quiescence) */
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void cmd_send(int fd, const char *hex, int oob)
{
	size_t n = strlen(hex) / 2;
	unsigned char *buf = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
	ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL | oob);
	int e = errno;
	free(buf);
	settle();
	if (w < 0)
		reply("@@SMCD-R err %s %s\n", errname(e), strerror(e));
	else
		reply("@@SMCD-R ok n=%zd\n", w);
}

static void cmd_recv(int fd, size_t max)
{
	unsigned char *buf = malloc(max + 1);
	ssize_t r = max ? recv(fd, buf, max, MSG_DONTWAIT) : 0;
	int e = errno;
	settle();
	if (r < 0) {
		free(buf);
		reply("@@SMCD-R err %s %s\n", errname(e), strerror(e));
		return;
	}
	int inq = 0;
	ioctl(fd, SIOCINQ, &inq);
	size_t need = (size_t)r * 2 + 64;
	if (need > reply_cap) {
		reply_cap = need * 2;
		reply_buf = realloc(reply_buf, reply_cap);
	}
	char *o = reply_buf + sprintf(reply_buf, "@@SMCD-R ok eof=%d inq=%d data=", r == 0 && max,
				      inq);
	static const char hx[] = "0123456789abcdef";
	for (ssize_t i = 0; i < r; i++) {
		*o++ = hx[buf[i] >> 4];
		*o++ = hx[buf[i] & 15];
	}
	*o++ = '\n';
	write_all_fd(1, reply_buf, (size_t)(o - reply_buf));
	free(buf);
}

/* recv(MSG_OOB) (smc_rx_recv_urg): at most one byte, the urgent one */
static void cmd_recv_oob(int fd, size_t max)
{
	unsigned char byte = 0;
	ssize_t r = recv(fd, &byte, max ? 1 : 0, MSG_DONTWAIT | MSG_OOB);
	int e = errno;
	settle();
	if (r < 0)
		reply("@@SMCD-R err %s %s\n", errname(e), strerror(e));
	else if (r == 0)
		reply("@@SMCD-R ok n=0 data=\n");
	else
		reply("@@SMCD-R ok n=1 data=%02x\n", byte);
}

static void cmd_curs(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		reply("@@SMCD-R err EBADF\n");
		return;
	}
	static struct diag_rec recs[MAX_DIAG];
	int n = diag_dump(recs, MAX_DIAG);
	for (int i = 0; i < n; i++) {
		if (recs[i].msg.diag_inode != st.st_ino || !recs[i].has_conninfo)
			continue;
		const struct smc_diag_conninfo_ *c = &recs[i].ci;
		int inq = 0, outq = 0;
		ioctl(fd, SIOCINQ, &inq);
		ioctl(fd, SIOCOUTQ, &outq);
		reply("@@SMCD-R ok tx_prod=%u:%u tx_cons=%u:%u rx_prod=%u:%u rx_cons=%u:%u "
		      "tx_prep=%u:%u tx_sent=%u:%u tx_fin=%u:%u inq=%d outq=%d sndbuf=%u rmbe=%u "
		      "peer_rmbe=%u state=%u mode=%u rx_flags=%u tx_flags=%u\n",
		      c->tx_prod.wrap, c->tx_prod.count, c->tx_cons.wrap, c->tx_cons.count,
		      c->rx_prod.wrap, c->rx_prod.count, c->rx_cons.wrap, c->rx_cons.count,
		      c->tx_prep.wrap, c->tx_prep.count, c->tx_sent.wrap, c->tx_sent.count,
		      c->tx_fin.wrap, c->tx_fin.count, inq, outq, c->sndbuf_size, c->rmbe_size,
		      c->peer_rmbe_size, recs[i].msg.diag_state, recs[i].msg.diag_mode,
		      c->rx_conn_state_flags, c->tx_conn_state_flags);
		return;
	}
	reply("@@SMCD-R err EIO no smc_diag record for this socket\n");
}

/* the user-space CLC peer (BPF SMC option, handshake endpoints, peer-* scenarios) */
#include "peer.c"
#include "urg.c"

/* A connected SMC-D pair: the client's and the server's socket, both non-blocking. SO_RCVBUF
 * = DMB size on both ends (SOL_SOCKET options set the SMC socket's own sk_rcvbuf, which
 * __smc_buf_create halves). On failure the error reply has been written. */
static int serve_open(int dmb, int *client_fd, int *server_fd)
{
	uint16_t pt = serve_port++;
	int l = server(K_SMC, 0, pt, 4, dmb, 0);
	int c = mksock(K_SMC, 0);
	if (dmb > 0)
		setsockopt(c, SOL_SOCKET, SO_RCVBUF, &dmb, sizeof(dmb));
	struct addr sa = mkaddr(0, pt);
	int rc1 = l < 0 || c < 0 ? -1 : connect(c, (struct sockaddr *)&sa.ss, sa.len);
	int e1 = errno;
	int sfd = rc1 == 0 ? accept_to(l, 5000) : -1;
	if (l >= 0)
		close(l);
	if (sfd < 0 || n_handles + 2 > MAX_HANDLES) {
		if (c >= 0)
			close(c);
		if (sfd >= 0)
			close(sfd);
		reply("@@SMCD-R err %s open: connect %d (%s) %s\n", rc1 ? errname(e1) : "EIO",
		      rc1, strerror(e1), scen_error);
		scen_error[0] = 0;
		return -1;
	}
	fcntl(c, F_SETFL, O_NONBLOCK);
	fcntl(sfd, F_SETFL, O_NONBLOCK);
	*client_fd = c;
	*server_fd = sfd;
	return 0;
}

/* Wait (bounded) until the writer's SIOCOUTQ is 0. With loopback-ism's merged sndbuf
 * (smc_ism_support_dmb_nocopy) sndbuf_space grows back only when the peer's consumer cursor
 * arrives (smc_cdc_msg_recv_action), so 0 means: every byte sent was read and confirmed. */
static int outq_drained(int w, uint64_t deadline)
{
	for (;;) {
		int outq = -1;
		if (ioctl(w, SIOCOUTQ, &outq) < 0)
			return -1;
		if (outq == 0)
			return 0;
		if (now_us() > deadline)
			return -1;
		sched_yield();
	}
}

/* Move the cursors of the direction w -> r on by `start` bytes of plain traffic, ending where
 * the spec's conn_open_urg starts: everything sent, read and its consumer cursor confirmed
 * (rx_curs_confirmed = cons). smc_tx_consumer_update confirms on its own only when more than
 * rmbe_update_limit bytes wait and the sender has at most half the ring free, so every chunk
 * is at least half a ring and one recv reads it whole (one send = one CDC: it all arrives at
 * once). A start below half a ring cannot end confirmed that way; it is taken one cursor period
 * (2^16 laps) further, which leaves every cursor the same. */
static int serve_advance(int w, int r, long long start, char *why, size_t whylen)
{
	int len = 0; /* the peer's ring (merged: the writer's sndbuf is that ring) */
	struct stat st;
	if (fstat(w, &st) == 0) {
		static struct diag_rec recs[MAX_DIAG];
		int n = diag_dump(recs, MAX_DIAG);
		for (int i = 0; i < n; i++)
			if (recs[i].msg.diag_inode == st.st_ino && recs[i].has_conninfo)
				len = (int)recs[i].ci.peer_rmbe_size;
	}
	if (len <= 0) {
		snprintf(why, whylen, "no smc_diag ring length for the writer");
		return -1;
	}
	long long total = start;
	if (total < len / 2)
		total += (long long)len << 16;
	long long k = total / len, rem = total % len;
	long long chunks_full = k, last1 = 0, last2 = 0;
	if (rem >= len / 2) {
		last1 = rem;
	} else if (rem > 0) {
		chunks_full = k - 1;
		last1 = (len + rem) / 2;
		last2 = len + rem - last1;
	}
	unsigned char *buf = malloc((size_t)len);
	memset(buf, 0x5a, (size_t)len);
	uint64_t deadline = now_us() + 150u * 1000000u;
	long long moved = 0;
	int rc = 0;
	for (long long i = 0; i < chunks_full + 2 && rc == 0; i++) {
		long long c = i < chunks_full ? len : i == chunks_full ? last1 : last2;
		if (c <= 0)
			continue;
		if (outq_drained(w, deadline) < 0) {
			snprintf(why, whylen, "after %lld bytes the writer's SIOCOUTQ stays above 0",
				 moved);
			rc = -1;
			break;
		}
		ssize_t s = send(w, buf, (size_t)c, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (s != c) {
			snprintf(why, whylen, "after %lld bytes send(%lld) returned %zd (%s)", moved,
				 c, s, s < 0 ? strerror(errno) : "short");
			rc = -1;
			break;
		}
		long long got = 0;
		while (got < c) {
			struct pollfd p = { r, POLLIN, 0 };
			if (poll(&p, 1, 2000) <= 0 || now_us() > deadline) {
				snprintf(why, whylen, "after %lld bytes the reader waits for data",
					 moved + got);
				rc = -1;
				break;
			}
			ssize_t n = recv(r, buf, (size_t)(c - got), MSG_DONTWAIT);
			if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
				snprintf(why, whylen, "after %lld bytes recv returned %zd (%s)",
					 moved + got, n, n < 0 ? strerror(errno) : "eof");
				rc = -1;
				break;
			}
			if (n > 0)
				got += n;
		}
		moved += got;
	}
	if (rc == 0 && outq_drained(w, deadline) < 0) {
		snprintf(why, whylen, "the last consumer cursor update never came (%lld bytes)",
			 moved);
		rc = -1;
	}
	free(buf);
	return rc;
}

static int serve(void)
{
	struct termios t;
	if (tcgetattr(0, &t) == 0) {
		cfmakeraw(&t);
		t.c_oflag |= OPOST | ONLCR;
		tcsetattr(0, TCSANOW, &t);
	}
	reply_cap = 1 << 20;
	reply_buf = malloc(reply_cap);
	size_t cap = 1 << 20, len = 0;
	char *line = malloc(cap);
	ueid_add();
	write_all_fd(1, "\n@@SMCD-READY\n", 14);
	for (;;) {
		char ch;
		ssize_t r = read(0, &ch, 1);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return 0;
		}
		if (ch != '\n' && ch != '\r') {
			if (len + 1 >= cap) {
				cap *= 2;
				line = realloc(line, cap);
			}
			line[len++] = ch;
			continue;
		}
		if (!len)
			continue;
		line[len] = 0;
		len = 0;
		char *cmd = strtok(line, " ");
		char *a1 = strtok(NULL, " ");
		char *a2 = strtok(NULL, " ");
		if (!cmd)
			continue;
		if (peer_serve(cmd, a1, a2))
			continue;
		if (!strcmp(cmd, "quit")) {
			reply("@@SMCD-R ok\n");
			return 0;
		}
		if (!strcmp(cmd, "reset")) {
			for (int i = 0; i < n_handles; i++)
				if (h_fd[i] >= 0)
					close(h_fd[i]);
			n_handles = 0;
			msleep(20);
			reply("@@SMCD-R ok\n");
			continue;
		}
		if (!strcmp(cmd, "open") || !strcmp(cmd, "openurg")) {
			/* a connected SMC-D pair; openurg: then `start` bytes of plain traffic each
			 * way (serve_advance) */
			int dmb = a1 ? atoi(a1) : 0;
			long long start = a2 && !strcmp(cmd, "openurg") ? atoll(a2) : 0;
			int c, sfd;
			if (serve_open(dmb, &c, &sfd) < 0)
				continue;
			if (start > 0) {
				char why[200];
				if (serve_advance(c, sfd, start, why, sizeof(why)) < 0 ||
				    serve_advance(sfd, c, start, why, sizeof(why)) < 0) {
					close(c);
					close(sfd);
					reply("@@SMCD-R err EIO openurg: %s\n", why);
					continue;
				}
			}
			h_fd[n_handles] = c;
			h_fd[n_handles + 1] = sfd;
			reply("@@SMCD-R ok a=%d b=%d\n", n_handles, n_handles + 1);
			n_handles += 2;
			settle();
			continue;
		}
		int fd = a1 ? handle_fd(a1) : -2;
		if (fd == -2) {
			reply("@@SMCD-R err EINVAL unknown handle\n");
			continue;
		}
		if (fd < 0) {
			reply("@@SMCD-R err EBADF handle closed\n");
			continue;
		}
		if (!strcmp(cmd, "send"))
			cmd_send(fd, a2 ? a2 : "", 0);
		else if (!strcmp(cmd, "sendoob"))
			cmd_send(fd, a2 ? a2 : "", MSG_OOB);
		else if (!strcmp(cmd, "recvoob"))
			cmd_recv_oob(fd, a2 ? (size_t)atol(a2) : 0);
		else if (!strcmp(cmd, "atmark")) {
			int v = -1;
			int rc = ioctl(fd, SIOCATMARK, &v);
			int e = errno;
			if (rc < 0)
				reply("@@SMCD-R err %s %s\n", errname(e), strerror(e));
			else
				reply("@@SMCD-R ok atmark=%d\n", v);
		} else if (!strcmp(cmd, "oobinline")) {
			int on = a2 ? atoi(a2) : 0;
			int rc = setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &on, sizeof(on));
			int e = errno;
			if (rc < 0)
				reply("@@SMCD-R err %s %s\n", errname(e), strerror(e));
			else
				reply("@@SMCD-R ok\n");
		}
		else if (!strcmp(cmd, "recv"))
			cmd_recv(fd, a2 ? (size_t)atol(a2) : 0);
		else if (!strcmp(cmd, "curs"))
			cmd_curs(fd);
		else if (!strcmp(cmd, "shutdown")) {
			int rc = shutdown(fd, SHUT_WR);
			int e = errno;
			settle();
			if (rc < 0)
				reply("@@SMCD-R err %s %s\n", errname(e), strerror(e));
			else
				reply("@@SMCD-R ok\n");
		} else if (!strcmp(cmd, "close")) {
			close(fd);
			h_fd[atoi(a1)] = -1;
			settle();
			reply("@@SMCD-R ok\n");
		} else {
			reply("@@SMCD-R err EINVAL unknown command %s\n", cmd);
		}
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1 && !strcmp(argv[1], "--serve"))
		return serve();
	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (int i = 0; i < N_SCENS; i++)
			printf("%s\t%d\t%s\n", SCENS[i].name, SCENS[i].timeout_s, SCENS[i].doc);
		for (int i = 0; i < N_PEER_SCENS; i++)
			printf("%s\t%d\t%s\n", PEER_SCENS[i].name, PEER_SCENS[i].timeout_s,
			       PEER_SCENS[i].doc);
		for (int i = 0; i < N_URG_SCENS; i++)
			printf("%s\t%d\t%s\n", URG_SCENS[i].name, URG_SCENS[i].timeout_s,
			       URG_SCENS[i].doc);
		return 0;
	}
	char hello[128];
	int hl = snprintf(hello, sizeof(hello), "\n@@SMCD-HARNESS-START %d\n", argc - 1);
	write_all_fd(1, hello, (size_t)hl);
	for (int a = 1; a < argc; a++) {
		int found = -1;
		for (int i = 0; i < N_SCENS; i++)
			if (!strcmp(SCENS[i].name, argv[a]))
				found = i;
		const struct scen *sc = found >= 0 ? &SCENS[found] : NULL;
		for (int i = 0; !sc && i < N_PEER_SCENS; i++)
			if (!strcmp(PEER_SCENS[i].name, argv[a]))
				sc = &PEER_SCENS[i];
		for (int i = 0; !sc && i < N_URG_SCENS; i++)
			if (!strcmp(URG_SCENS[i].name, argv[a]))
				sc = &URG_SCENS[i];
		if (!sc) {
			emit_failure(argv[a], "unknown scenario");
			continue;
		}
		run_one(sc, (uint16_t)(20000 + 10 * a));
	}
	write_all_fd(1, "\n@@SMCD-HARNESS-DONE\n", 21);
	return 0;
}
