/*
 * Urgent data (MSG_OOB), SO_OOBINLINE, SIOCATMARK and both directions at once on one SMC-D
 * connection (issue 11, the real-kernel part). Included by harness.c.
 *
 * Every blocking call of these scenarios is bounded: the sockets get SO_SNDTIMEO/SO_RCVTIMEO
 * (SOL_SOCKET options reach the SMC sock itself: AF_SMC has no custom SOL_SOCKET handler, and
 * smc_tx_wait/smc_rx_wait use sock_sndtimeo/sock_rcvtimeo), reads wait in poll() with a
 * timeout. A step that does not finish within its bound is a stall: it is recorded with the
 * step's name and an smc_diag view of the connection at that moment (cursors and producer
 * flags of both ends), and the scenario goes on - a stall is a finding, never a hang.
 *
 * The harness only reports raw facts (return values, errno, bytes, SIOCATMARK, smc_diag); the
 * host (conformance/kernel/urg_checks.py) compares them with the expected behaviour.
 *
 * Stream model used by the threaded scenarios: direction d sends the byte stream
 * pattern[i % PATTERN_LEN], i = 0 .. total-1; the bytes at the indices marks[] are sent as
 * urgent data (one send(MSG_OOB) of exactly that byte), every other byte with plain send().
 * Every stream byte, urgent or not, occupies one slot of the peer's DMB, so stream index i
 * lies at ring slot i % len, lap (wrap) i / len.
 */

/* bound of one step of the short cases, and of a writer/reader step in the transfers */
#define URG_STEP_MS 1500
#define URG_XFER_STEP_MS 4000
#define URG_MAX_MARKS 160

static void urg_timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		note("SO_SNDTIMEO: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		note("SO_RCVTIMEO: %s", strerror(errno));
}

static int urg_pair(uint16_t port, int bufs, int *cfd, int *sfd, int ms)
{
	if (smcd_pair(port, bufs, cfd, sfd) < 0)
		return -1;
	urg_timeouts(*cfd, ms);
	urg_timeouts(*sfd, ms);
	return 0;
}

static int atmark(int fd)
{
	int v = -1;
	if (ioctl(fd, SIOCATMARK, &v) < 0)
		return -1000 - errno;
	return v;
}

static int inq(int fd)
{
	int v = -1;
	if (ioctl(fd, SIOCINQ, &v) < 0)
		return -1000 - errno;
	return v;
}

static void jhex(const char *k, const unsigned char *p, ssize_t n)
{
	char h[2 * 64 + 1];
	size_t m = n > 0 ? (size_t)n : 0;
	if (m > 64)
		m = 64;
	for (size_t i = 0; i < m; i++)
		sprintf(h + 2 * i, "%02x", p[i]);
	h[2 * m] = 0;
	kv_str(k, h);
}

/* One step of a short case: {"step", "rc", "errno", "ms", "data"?, "diag_at_stall"?}.
 * A blocking call that ended with EAGAIN/EWOULDBLOCK after its timeout is a stall. */
static void jstep(const char *name, ssize_t rc, int err, uint64_t t0, const void *data,
		  uint16_t port, int blocking)
{
	jobj();
	kv_str("step", name);
	kv_int("rc", rc);
	kv_int("errno", rc < 0 ? err : 0);
	kv_str("err", rc < 0 ? strerror(err) : "");
	kv_uint("ms", (now_us() - t0) / 1000);
	if (data && rc > 0)
		jhex("data", data, rc);
	if (blocking && rc < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
		kv_bool("stall", 1);
		jkey("diag_at_stall");
		json_diag_view(name, port);
	}
	jobj_end();
}

static void jval(const char *name, int v)
{
	jobj();
	kv_str("step", name);
	kv_int("rc", v);
	jobj_end();
}

static ssize_t s_send(const char *name, int fd, const char *p, size_t n, int flags,
		      uint16_t port)
{
	step = name;
	uint64_t t0 = now_us();
	errno = 0;
	ssize_t r = send(fd, p, n, flags | MSG_NOSIGNAL);
	jstep(name, r, errno, t0, NULL, port, !(flags & MSG_DONTWAIT));
	return r;
}

static ssize_t s_recv(const char *name, int fd, size_t n, int flags, uint16_t port)
{
	unsigned char buf[256];
	step = name;
	uint64_t t0 = now_us();
	errno = 0;
	ssize_t r = recv(fd, buf, n < sizeof(buf) ? n : sizeof(buf), flags);
	jstep(name, r, errno, t0, buf, port, !(flags & MSG_DONTWAIT));
	return r;
}

static void s_poll(const char *name, int fd, int ms)
{
	struct pollfd p = { fd, POLLIN | POLLPRI, 0 };
	int r = poll(&p, 1, ms);
	jobj();
	kv_str("step", name);
	kv_int("rc", r);
	kv_int("revents", r > 0 ? p.revents : 0);
	jobj_end();
}

/* A case: {"case": name, "steps": [...], "diag": [view at the end]}; returns 0 when its pair
 * was made. */
static int case_begin(const char *name, uint16_t port, int bufs, int *c, int *s)
{
	jobj();
	kv_str("case", name);
	kv_uint("port", port);
	if (urg_pair(port, bufs, c, s, URG_STEP_MS) < 0) {
		kv_str("error", scen_error[0] ? scen_error : "no SMC-D pair");
		jobj_end();
		return -1;
	}
	jkey("steps");
	jarr();
	return 0;
}

static void case_end(uint16_t port, int c, int s)
{
	jarr_end();
	jkey("diag");
	jarr();
	json_diag_view("end", port);
	jarr_end();
	jobj_end();
	close(c);
	close(s);
}

/* ------------------------------------------------------------------ short cases */

/* non-inline: "abc", then "X" urgent; the reader peeks it, reads in band, reads it OOB */
static void case_oob_basic(uint16_t port)
{
	int c, s;
	if (case_begin("oob-basic", port, 16384, &c, &s) < 0)
		return;
	s_send("c send abc", c, "abc", 3, 0, port);
	s_send("c send X oob", c, "X", 1, MSG_OOB, port);
	msleep(30);
	s_poll("s poll", s, URG_STEP_MS);
	jval("s SIOCINQ", inq(s));
	jval("s SIOCATMARK before read", atmark(s));
	s_recv("s recv oob peek", s, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT, port);
	s_recv("s recv", s, 100, MSG_DONTWAIT, port);
	jval("s SIOCATMARK after read", atmark(s));
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	s_recv("s recv oob again", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	s_send("c send def", c, "def", 3, 0, port);
	s_recv("s recv def", s, 100, 0, port);
	case_end(port, c, s);
}

/* SO_OOBINLINE at the reader: the urgent byte is read in band, SIOCATMARK marks it */
static void case_oob_inline(uint16_t port)
{
	int c, s, one = 1;
	if (case_begin("oob-inline", port, 16384, &c, &s) < 0)
		return;
	jval("s SO_OOBINLINE", setsockopt(s, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)));
	s_send("c send abc", c, "abc", 3, 0, port);
	s_send("c send X oob", c, "X", 1, MSG_OOB, port);
	msleep(30);
	s_poll("s poll", s, URG_STEP_MS);
	jval("s SIOCINQ", inq(s));
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	jval("s SIOCATMARK before read", atmark(s));
	s_recv("s recv 1", s, 100, MSG_DONTWAIT, port);
	jval("s SIOCATMARK after read", atmark(s));
	s_recv("s recv 2", s, 100, MSG_DONTWAIT, port);
	jval("s SIOCATMARK after urgent byte", atmark(s));
	s_send("c send def", c, "def", 3, 0, port);
	s_recv("s recv def", s, 100, 0, port);
	case_end(port, c, s);
}

/* (1) the reader has caught up when the urgent byte arrives and reads it with recv(MSG_OOB)
 * first: nothing skips the urgent byte, the writer waits for its confirmation */
static void case_oob_at_mark(uint16_t port)
{
	int c, s;
	if (case_begin("oob-at-mark", port, 16384, &c, &s) < 0)
		return;
	s_send("c send abc", c, "abc", 3, 0, port);
	s_recv("s recv abc", s, 100, 0, port);
	s_send("c send X oob", c, "X", 1, MSG_OOB, port);
	msleep(30);
	jval("s SIOCATMARK", atmark(s));
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	s_send("c send def", c, "def", 3, 0, port);
	s_recv("s recv def", s, 100, 0, port);
	case_end(port, c, s);
}

/* the control: a plain recv() first (smc_rx_recvmsg_data_available skips the urgent byte
 * while its state is still VALID), then recv(MSG_OOB) */
static void case_oob_at_mark_plain_first(uint16_t port)
{
	int c, s;
	if (case_begin("oob-at-mark-plain-first", port, 16384, &c, &s) < 0)
		return;
	s_send("c send abc", c, "abc", 3, 0, port);
	s_recv("s recv abc", s, 100, 0, port);
	s_send("c send X oob", c, "X", 1, MSG_OOB, port);
	msleep(30);
	s_recv("s recv plain", s, 100, MSG_DONTWAIT, port);
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	s_send("c send def", c, "def", 3, 0, port);
	s_recv("s recv def", s, 100, 0, port);
	case_end(port, c, s);
}

/* (2) a send(MSG_OOB) that fails (the previous urgent byte is not confirmed yet) leaves
 * urg_data_pending set; the next CDC without new data (here: shutdown's, or a consumer-cursor
 * update of the other direction) turns the reader's unread urgent byte into NOTYET */
static void case_oob_failed_send(uint16_t port, int duplex)
{
	int c, s;
	if (case_begin(duplex ? "oob-failed-send-duplex" : "oob-failed-send", port, 16384, &c,
		       &s) < 0)
		return;
	s_send("c send X oob", c, "X", 1, MSG_OOB, port);
	msleep(30);
	s_recv("s recv oob peek", s, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT, port);
	s_send("c send Y oob nonblocking", c, "Y", 1, MSG_OOB | MSG_DONTWAIT, port);
	jobj();
	kv_str("step", "diag after failed send");
	jkey("diag");
	json_diag_view("after-failed-send", port);
	jobj_end();
	if (duplex) {
		/* the other direction: 10000 bytes s -> c, read by c: c's consumer update CDC */
		static char big[10000];
		memset(big, 'd', sizeof(big));
		s_send("s send 10000", s, big, sizeof(big), 0, port);
		ssize_t got = 0;
		uint64_t t0 = now_us();
		while (got < (ssize_t)sizeof(big)) {
			ssize_t r = recv(c, big, sizeof(big), 0);
			if (r <= 0)
				break;
			got += r;
		}
		jstep("c recv 10000", got, errno, t0, NULL, port, 0);
		msleep(30);
		s_poll("s poll", s, 200);
		s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
		s_recv("s recv", s, 100, MSG_DONTWAIT, port);
		/* nothing skipped 'X' (SMC_URG_NOTYET): is the writer still held? */
		s_send("c send def", c, "def", 3, 0, port);
		case_end(port, c, s);
		return;
	} else {
		jval("c shutdown SHUT_WR", shutdown(c, SHUT_WR));
	}
	msleep(30);
	s_poll("s poll", s, 200);
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	s_recv("s recv", s, 100, MSG_DONTWAIT, port);
	case_end(port, c, s);
}

struct blocked_send {
	int fd;
	ssize_t rc;
	int err;
	uint64_t ms;
};

static void *blocked_send_main(void *arg)
{
	struct blocked_send *b = arg;
	uint64_t t0 = now_us();
	errno = 0;
	b->rc = send(b->fd, "Y", 1, MSG_OOB | MSG_NOSIGNAL);
	b->err = errno;
	b->ms = (now_us() - t0) / 1000;
	return NULL;
}

/* (2b) the same with a blocking send(MSG_OOB) that merely waits for the previous urgent byte's
 * confirmation (smc_tx_wait releases the socket lock): the other direction's consumer update
 * carries urg_data_pending meanwhile; nothing skips 'X' any more, so the send never ends */
static void case_oob_blocked_send(uint16_t port)
{
	int c, s;
	if (case_begin("oob-blocked-send-duplex", port, 16384, &c, &s) < 0)
		return;
	s_send("c send X oob", c, "X", 1, MSG_OOB, port);
	msleep(30);
	s_recv("s recv oob peek", s, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT, port);
	struct blocked_send b = { .fd = c };
	pthread_t th;
	pthread_create(&th, NULL, blocked_send_main, &b);
	/* wait (bounded) until the thread sits in smc_tx_wait with urg_data_pending set: the
	 * client's tx_prod_flags in smc_diag show 0x40 */
	uint64_t tw = now_us();
	int pending = 0;
	while (!pending && now_us() - tw < 3000000u) {
		static struct diag_rec recs[MAX_DIAG];
		int n = diag_dump(recs, MAX_DIAG);
		for (int i = 0; i < n; i++)
			if (ntohs(recs[i].msg.id.idiag_dport) == port && recs[i].has_conninfo &&
			    (recs[i].ci.tx_prod_flags & 0x40))
				pending = 1;
		if (!pending)
			msleep(5);
	}
	msleep(20);
	jobj();
	kv_str("step", "c urg_data_pending while the send waits");
	kv_int("rc", pending);
	kv_uint("ms", (now_us() - tw) / 1000);
	jobj_end();
	static char big[10000];
	memset(big, 'd', sizeof(big));
	s_send("s send 10000", s, big, sizeof(big), 0, port);
	ssize_t got = 0;
	uint64_t t0 = now_us();
	while (got < (ssize_t)sizeof(big)) {
		ssize_t r = recv(c, big, sizeof(big), 0);
		if (r <= 0)
			break;
		got += r;
	}
	jstep("c recv 10000", got, errno, t0, NULL, port, 0);
	msleep(30);
	s_poll("s poll", s, 200);
	s_recv("s recv plain", s, 100, MSG_DONTWAIT, port);
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	step = "join the blocked send(MSG_OOB)";
	pthread_join(th, NULL); /* bounded by SO_SNDTIMEO */
	jobj();
	kv_str("step", "c send Y oob (blocking, other thread)");
	kv_int("rc", b.rc);
	kv_int("errno", b.rc < 0 ? b.err : 0);
	kv_uint("ms", b.ms);
	if (b.rc < 0 && (b.err == EAGAIN || b.err == EWOULDBLOCK)) {
		kv_bool("stall", 1);
		jkey("diag_at_stall");
		json_diag_view("blocked-send", port);
	}
	jobj_end();
	case_end(port, c, s);
}

/* (3) SIOCATMARK with no urgent data ever sent: the reader's consumer cursor at
 * (wrap 1, count len - 1) */
static void case_atmark_no_urg(uint16_t port)
{
	int c, s;
	if (case_begin("atmark-no-urg", port, 16384, &c, &s) < 0)
		return;
	static struct diag_rec recs[MAX_DIAG];
	int n = diag_dump(recs, MAX_DIAG);
	int len = 0;
	for (int i = 0; i < n; i++)
		if (ntohs(recs[i].msg.id.idiag_sport) == port && recs[i].has_conninfo)
			len = (int)recs[i].ci.rmbe_size;
	jval("s rmbe_size", len);
	if (len <= 0) {
		case_end(port, c, s);
		return;
	}
	/* stop points: before a lap ends, at the last slot of lap 0, of lap 1, first of lap 2 */
	int stops[] = { 100, len - 1, 2 * len - 2, 2 * len - 1, 2 * len, 3 * len - 1 };
	static char buf[8192];
	memset(buf, 'n', sizeof(buf));
	long sent = 0, rcvd = 0, total = 3 * len + 10;
	int k = 0;
	uint64_t t0 = now_us();
	step = "atmark-no-urg transfer";
	while (k < (int)(sizeof(stops) / sizeof(stops[0]))) {
		if (now_us() - t0 > 5000000u) {
			jstep("transfer", -1, EAGAIN, t0, NULL, port, 1);
			break;
		}
		if (sent < total) {
			ssize_t w = send(c, buf, (size_t)(total - sent < 4000 ? total - sent : 4000),
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				sent += w;
		}
		long want = stops[k] - rcvd;
		if (want == 0) {
			char lab[48];
			snprintf(lab, sizeof(lab), "s SIOCATMARK after %ld", rcvd);
			jval(lab, atmark(s));
			k++;
			continue;
		}
		struct pollfd p = { s, POLLIN, 0 };
		poll(&p, 1, 10);
		ssize_t r = recv(s, buf, (size_t)(want < 4000 ? want : 4000), MSG_DONTWAIT);
		if (r > 0)
			rcvd += r;
	}
	case_end(port, c, s);
}

/* (4) send(MSG_OOB | MSG_MORE): corked, urg_tx_pend set; the next send() waits for a
 * confirmation of data that was never sent */
static void case_oob_more(uint16_t port)
{
	int c, s, one = 1;
	if (case_begin("oob-more", port, 16384, &c, &s) < 0)
		return;
	s_send("c send X oob more", c, "X", 1, MSG_OOB | MSG_MORE, port);
	msleep(30);
	jval("s SIOCINQ", inq(s));
	s_poll("s poll", s, 100);
	s_send("c send abc", c, "abc", 3, 0, port);
	/* what releases it: TCP_NODELAY pushes the corked data (smc_setsockopt ->
	 * smc_tx_pending); a plain recv() skips the urgent byte (first: recv(MSG_OOB) at the
	 * mark would not, case oob-at-mark), the writer is confirmed */
	jval("c TCP_NODELAY", setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
	msleep(30);
	s_recv("s recv plain", s, 100, MSG_DONTWAIT, port);
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	s_send("c send abc after push", c, "abc", 3, 0, port);
	s_recv("s recv abc", s, 100, 0, port);
	case_end(port, c, s);
}

/* the same steps over plain TCP on lo, for comparison: TCP's SIOCATMARK at the mark */
static void case_oob_basic_tcp(uint16_t port)
{
	jobj();
	kv_str("case", "oob-basic-tcp");
	kv_uint("port", port);
	int lfd = server(K_TCP, 0, port, 4, 0, 0);
	int c = lfd >= 0 ? client(K_TCP, 0, port, 0, 0) : -1;
	int s = c >= 0 ? accept_to(lfd, 3000) : -1;
	if (lfd >= 0)
		close(lfd);
	if (c < 0 || s < 0) {
		kv_str("error", scen_error[0] ? scen_error : "no TCP pair");
		jobj_end();
		return;
	}
	urg_timeouts(c, URG_STEP_MS);
	urg_timeouts(s, URG_STEP_MS);
	jkey("steps");
	jarr();
	s_send("c send abc", c, "abc", 3, 0, port);
	s_send("c send X oob", c, "X", 1, MSG_OOB, port);
	msleep(30);
	jval("s SIOCATMARK before read", atmark(s));
	s_recv("s recv", s, 100, MSG_DONTWAIT, port);
	jval("s SIOCATMARK after read", atmark(s));
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	jarr_end();
	jobj_end();
	close(c);
	close(s);
}

/* urgent data followed by shutdown(SHUT_WR): the reader gets the data, the urgent byte, EOF */
static void case_oob_shutdown(uint16_t port)
{
	int c, s;
	if (case_begin("oob-shutdown", port, 16384, &c, &s) < 0)
		return;
	s_send("c send abc", c, "abc", 3, 0, port);
	s_send("c send X oob", c, "X", 1, MSG_OOB, port);
	jval("c shutdown SHUT_WR", shutdown(c, SHUT_WR));
	msleep(30);
	s_recv("s recv", s, 100, MSG_DONTWAIT, port);
	s_recv("s recv oob", s, 1, MSG_OOB | MSG_DONTWAIT, port);
	s_recv("s recv eof", s, 100, 0, port);
	case_end(port, c, s);
}

static void sc_urg_basic(uint16_t port)
{
	jkey("cases");
	jarr();
	case_oob_basic(port);
	case_oob_inline(port + 1);
	case_oob_at_mark_plain_first(port + 2);
	case_oob_shutdown(port + 3);
	case_oob_basic_tcp(port + 4);
	jarr_end();
}

static void sc_urg_findings(uint16_t port)
{
	jkey("cases");
	jarr();
	case_oob_at_mark(port);
	case_oob_failed_send(port + 1, 0);
	case_oob_failed_send(port + 2, 1);
	case_oob_blocked_send(port + 3);
	case_atmark_no_urg(port + 4);
	case_oob_more(port + 5);
	jarr_end();
}

/* ------------------------------------------------------------------ transfers with urgent data */

struct urg_dir {
	const char *name;
	int wfd, rfd, inline_;
	uint16_t port;
	uint64_t total; /* stream bytes, urgent ones included */
	uint64_t marks[URG_MAX_MARKS];
	int n_marks;
	size_t max_chunk;
	uint64_t seed;
	uint64_t sync_at; /* an urgent byte sent only once the reader read all before it (0: none) */
	/* wait for POLLOUT before each send(MSG_OOB), so it never waits inside the kernel (with
	 * at least one plain byte between urgent bytes, urg_tx_pend is clear by then too) */
	int oob_gate;
	/* writer */
	volatile uint64_t sent;
	volatile int oob_sent; /* counted before the send(MSG_OOB) starts (the reader uses it) */
	int w_errno, w_stall;
	uint64_t w_stall_at;
	char w_step[80];
	/* reader */
	volatile uint64_t pos; /* next stream index the reader expects in band */
	uint64_t inband;       /* bytes read in band */
	/* per mark: G read OOB, S replaced by the next one before it was read, R lost (read past the mark first), E recv(MSG_OOB) EINVAL with
	 * nothing read past the mark, P peek failed, B wrong byte; inline: A SIOCATMARK 1
	 * before it, i read in band without; - not reached */
	char outcome[URG_MAX_MARKS + 1];
	/* the first non-G out-of-band reads: mark, peeked, read (or -errno), expected, the next
	 * mark's byte, SIOCATMARK, bytes the plain recv() read, urgent bytes the writer sent */
	int64_t odd[16][8];
	int n_odd;
	int ku;                /* next mark the reader expects out of band (non-inline) */
	int ks;                /* next mark the in-band reader passes */
	int oob_got, oob_bad, oob_peek_fail, oob_lost_race, atmark_hits, atmark_false;
	int inband_urgent; /* non-inline: an urgent byte arrived in band */
	int64_t mismatch_at, first_atmark_false;
	int r_errno, r_stall, r_eof;
	char r_step[80];
	volatile int w_done, r_done;
	uint64_t t_start, t_end;
	int oob_atmark_seen; /* non-inline: SIOCATMARK 1 at a peeked urgent byte */
};

static unsigned char urg_byte(uint64_t i) { return pattern[i % PATTERN_LEN]; }

static void *urg_writer(void *arg)
{
	struct urg_dir *d = arg;
	uint64_t s = d->seed * 2654435761u + 3;
	int k = 0;
	while (d->sent < d->total) {
		if (k < d->n_marks && d->sent == d->marks[k]) {
			unsigned char b = urg_byte(d->sent);
			if (d->sync_at && d->sent == d->sync_at) {
				/* let the reader catch up first: it is at the mark when the byte
				 * arrives (bounded wait) */
				uint64_t t0 = now_us();
				while (d->pos < d->sent && now_us() - t0 < 2000000u)
					msleep(5);
			}
			snprintf(d->w_step, sizeof(d->w_step), "send(MSG_OOB) urgent byte %d at %llu", k,
				 (unsigned long long)d->sent);
			if (d->oob_gate) {
				struct pollfd pf = { d->wfd, POLLOUT, 0 };
				if (poll(&pf, 1, URG_XFER_STEP_MS) <= 0) {
					snprintf(d->w_step, sizeof(d->w_step),
						 "poll(POLLOUT) before urgent byte %d", k);
					d->w_stall = 1;
					d->w_stall_at = d->sent;
					break;
				}
			}
			d->oob_sent++;
			ssize_t w = send(d->wfd, &b, 1, MSG_OOB | MSG_NOSIGNAL);
			if (w != 1)
				d->oob_sent--;
			if (w < 0 && errno == EINTR)
				continue;
			if (w != 1) {
				d->w_errno = w < 0 ? errno : 0;
				d->w_stall = w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
				d->w_stall_at = d->sent;
				break;
			}
			d->sent++;
			k++;
			continue;
		}
		uint64_t lim = (k < d->n_marks ? d->marks[k] : d->total) - d->sent;
		size_t chunk = 1 + (size_t)(rng_next(&s) % d->max_chunk);
		if (chunk > lim)
			chunk = (size_t)lim;
		if (k > 0 && d->sent == d->marks[k - 1] + 1)
			snprintf(d->w_step, sizeof(d->w_step),
				 "send() after urgent byte %d (waits for its confirmation)", k - 1);
		else
			snprintf(d->w_step, sizeof(d->w_step), "send() at %llu",
				 (unsigned long long)d->sent);
		ssize_t w = send(d->wfd, pattern + (d->sent % PATTERN_LEN), chunk, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			d->w_errno = errno;
			d->w_stall = errno == EAGAIN || errno == EWOULDBLOCK;
			d->w_stall_at = d->sent;
			break;
		}
		d->sent += (uint64_t)w;
	}
	d->w_done = 1;
	return NULL;
}

/* compare n in-band bytes with the stream from d->pos (non-inline: the marks are skipped) */
static void urg_cmp(struct urg_dir *d, const unsigned char *buf, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (!d->inline_ && d->ks < d->n_marks && d->pos == d->marks[d->ks]) {
			d->pos++; /* the urgent byte is not in band */
			d->ks++;
			continue;
		}
		if (d->inline_)
			while (d->ks < d->n_marks && d->marks[d->ks] < d->pos)
				d->ks++;
		uint64_t seg = n - i;
		if (!d->inline_ && d->ks < d->n_marks && d->marks[d->ks] - d->pos < seg)
			seg = d->marks[d->ks] - d->pos;
		if (d->mismatch_at < 0 && memcmp(buf + i, pattern + (d->pos % PATTERN_LEN), seg)) {
			for (uint64_t j = 0; j < seg; j++)
				if (buf[i + j] != urg_byte(d->pos + j)) {
					d->mismatch_at = (int64_t)(d->pos + j);
					break;
				}
		}
		d->pos += seg;
		i += seg;
	}
	d->inband += n;
}

/* Non-inline: on POLLPRI peek the urgent byte, let a plain recv() skip it if the reader is
 * at the mark (SIOCATMARK 1; see case oob-at-mark: recv(MSG_OOB) alone would not), then
 * consume it with recv(MSG_OOB). */
static void urg_read_oob(struct urg_dir *d, unsigned char *buf)
{
	unsigned char b = 0;
	snprintf(d->r_step, sizeof(d->r_step), "recv(MSG_OOB|MSG_PEEK) urgent byte %d", d->ku);
	ssize_t r = recv(d->rfd, &b, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);
	if (r != 1) {
		d->oob_peek_fail++;
		if (d->ku < d->n_marks)
			d->outcome[d->ku] = 'P';
		return;
	}
	int expect_ok = d->ku < d->n_marks && b == urg_byte(d->marks[d->ku]);
	ssize_t p = 0;
	int am = atmark(d->rfd);
	if (am == 1) {
		d->oob_atmark_seen++;
		p = recv(d->rfd, buf, 1, MSG_DONTWAIT);
		if (p > 0)
			urg_cmp(d, buf, (size_t)p);
	}
	unsigned char b2 = 0;
	snprintf(d->r_step, sizeof(d->r_step), "recv(MSG_OOB) urgent byte %d", d->ku);
	r = recv(d->rfd, &b2, 1, MSG_OOB | MSG_DONTWAIT);
	char o;
	int sent_urg = d->oob_sent;
	if (r == 1 && d->ku + 1 < d->n_marks && sent_urg > d->ku + 1 &&
	    b2 == urg_byte(d->marks[d->ku + 1])) {
		/* the skip released the writer, whose next urgent byte arrived before this
		 * recv(MSG_OOB): it replaced the one peeked (as TCP's urgent pointer does) */
		d->outcome[d->ku] = 'S';
		d->ku++;
		d->oob_got++;
		o = 'G';
	} else if (r == 1 && b2 == b && expect_ok) {
		d->oob_got++;
		o = 'G';
	} else if (r < 0 && errno == EINVAL && p > 0) {
		d->oob_lost_race++; /* read past the mark before the OOB read: TCP loses it too */
		o = 'R';
	} else {
		d->oob_bad++;
		o = r < 0 && errno == EINVAL ? 'E' : 'B';
	}
	if (d->ku < d->n_marks)
		d->outcome[d->ku] = o;
	if (o != 'G' && d->n_odd < 16) {
		int64_t *x = d->odd[d->n_odd++];
		x[0] = d->ku;
		x[1] = b;
		x[2] = r == 1 ? b2 : -errno;
		x[3] = d->ku < d->n_marks ? urg_byte(d->marks[d->ku]) : -1;
		x[4] = d->ku + 1 < d->n_marks ? urg_byte(d->marks[d->ku + 1]) : -1;
		x[5] = am;
		x[6] = p;
		x[7] = d->oob_sent;
	}
	d->ku++;
}

static void *urg_reader(void *arg)
{
	struct urg_dir *d = arg;
	static __thread unsigned char buf[262144];
	uint64_t s = d->seed * 40503u + 11;
	d->mismatch_at = -1;
	d->first_atmark_false = -1;
	uint64_t inband_total = d->total - (d->inline_ ? 0 : (uint64_t)d->n_marks);
	memset(d->outcome, '-', (size_t)d->n_marks);
	d->outcome[d->n_marks] = 0;
	while (d->inband < inband_total) {
		snprintf(d->r_step, sizeof(d->r_step), "poll() at stream index %llu",
			 (unsigned long long)d->pos);
		struct pollfd p = { d->rfd, POLLIN | POLLPRI, 0 };
		int pr = poll(&p, 1, URG_XFER_STEP_MS);
		if (pr == 0) {
			d->r_stall = 1;
			break;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			d->r_errno = errno;
			break;
		}
		if (!d->inline_ && (p.revents & POLLPRI)) {
			urg_read_oob(d, buf);
			continue;
		}
		if (d->inline_) {
			int am = atmark(d->rfd);
			while (d->ku < d->n_marks && d->marks[d->ku] < d->pos)
				d->ku++;
			if (am == 1) {
				if (d->ku < d->n_marks && d->marks[d->ku] == d->pos) {
					d->atmark_hits++;
					d->outcome[d->ku] = 'A';
				} else {
					d->atmark_false++;
					if (d->first_atmark_false < 0)
						d->first_atmark_false = (int64_t)d->pos;
				}
			}
		}
		size_t chunk = 1 + (size_t)(rng_next(&s) % d->max_chunk);
		if (chunk > sizeof(buf))
			chunk = sizeof(buf);
		if (chunk > inband_total - d->inband)
			chunk = (size_t)(inband_total - d->inband);
		snprintf(d->r_step, sizeof(d->r_step), "recv() at stream index %llu",
			 (unsigned long long)d->pos);
		ssize_t r = recv(d->rfd, buf, chunk, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			d->r_errno = r < 0 ? errno : 0;
			d->r_eof = r == 0;
			break;
		}
		if (d->inline_)
			for (int k = d->ku; k < d->n_marks && d->marks[k] < d->pos + (uint64_t)r; k++)
				if (d->outcome[k] == '-')
					d->outcome[k] = 'i';
		urg_cmp(d, buf, (size_t)r);
	}
	d->r_done = 1;
	d->t_end = now_us();
	return NULL;
}

static void urg_dir_json(const struct urg_dir *d)
{
	jobj();
	kv_str("dir", d->name);
	kv_bool("inline", d->inline_);
	kv_uint("total", d->total);
	kv_uint("marks", (uint64_t)d->n_marks);
	jkey("mark_at");
	jarr();
	for (int i = 0; i < d->n_marks; i++)
		juint(d->marks[i]);
	jarr_end();
	kv_uint("max_chunk", d->max_chunk);
	kv_uint("seed", d->seed);
	kv_uint("sent", d->sent);
	kv_int("oob_sent", d->oob_sent);
	kv_int("write_errno", d->w_errno);
	kv_bool("writer_stall", d->w_stall);
	kv_uint("writer_stall_at", d->w_stall_at);
	kv_str("writer_step", d->w_step);
	kv_uint("read_pos", d->pos);
	kv_int("oob_got", d->oob_got);
	kv_int("oob_bad", d->oob_bad);
	kv_int("oob_peek_fail", d->oob_peek_fail);
	kv_int("oob_lost_race", d->oob_lost_race);
	kv_int("oob_atmark_seen", d->oob_atmark_seen);
	kv_int("atmark_hits", d->atmark_hits);
	kv_int("atmark_false", d->atmark_false);
	kv_int("first_atmark_false", d->first_atmark_false);
	kv_int("mismatch_at", d->mismatch_at);
	kv_uint("inband", d->inband);
	kv_str("outcome", d->outcome);
	jkey("odd");
	jarr();
	for (int i = 0; i < d->n_odd; i++) {
		jarr();
		for (int j = 0; j < 8; j++)
			jint(d->odd[i][j]);
		jarr_end();
	}
	jarr_end();
	kv_int("read_errno", d->r_errno);
	kv_bool("reader_eof", d->r_eof);
	kv_bool("reader_stall", d->r_stall);
	kv_str("reader_step", d->r_step);
	kv_uint("elapsed_us", (d->t_end ? d->t_end : now_us()) - d->t_start);
	jobj_end();
}

/* Run the directions; the main thread takes smc_diag snapshots, and one view the moment a
 * thread stalls. Every thread ends by itself (bounded steps); `limit_s` is a last resort. */
static void urg_run(struct urg_dir *dirs, int nd, uint16_t port, unsigned snap_ms,
		    int max_snaps, int limit_s)
{
	pthread_t th[4];
	uint64_t t0 = now_us();
	for (int i = 0; i < nd; i++) {
		dirs[i].t_start = t0;
		pthread_create(&th[2 * i], NULL, urg_writer, &dirs[i]);
		pthread_create(&th[2 * i + 1], NULL, urg_reader, &dirs[i]);
	}
	jkey("snapshots");
	jarr();
	int snaps = 0, stall_seen = 0;
	for (;;) {
		int busy = 0, stalled = 0;
		for (int i = 0; i < nd; i++) {
			if (!dirs[i].w_done || !dirs[i].r_done)
				busy = 1;
			if (dirs[i].w_stall || dirs[i].r_stall)
				stalled = 1;
		}
		if (stalled && !stall_seen) {
			stall_seen = 1;
			json_diag_view("at-stall", port);
		}
		if (!busy)
			break;
		if (now_us() - t0 > (uint64_t)limit_s * 1000000u) {
			fail("transfer did not end within %d s", limit_s);
			json_diag_view("at-limit", port);
			for (int i = 0; i < nd; i++) {
				shutdown(dirs[i].wfd, SHUT_RDWR);
				shutdown(dirs[i].rfd, SHUT_RDWR);
			}
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
		pthread_join(th[2 * i], NULL);
		pthread_join(th[2 * i + 1], NULL);
	}
	jkey("transfers_urg");
	jarr();
	for (int i = 0; i < nd; i++)
		urg_dir_json(&dirs[i]);
	jarr_end();
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* random distinct marks in [1, total - 1), plus the given ones; a mark closer than min_gap to
 * the one before it is dropped */
static void urg_marks(struct urg_dir *d, int n_random, const uint64_t *fixed, int n_fixed,
		      uint64_t min_gap)
{
	uint64_t s = d->seed * 7919u + 5;
	int n = 0;
	for (int i = 0; i < n_fixed && n < URG_MAX_MARKS; i++)
		d->marks[n++] = fixed[i];
	for (int i = 0; i < n_random && n < URG_MAX_MARKS; i++)
		d->marks[n++] = 1 + rng_next(&s) % (d->total - 2);
	qsort(d->marks, (size_t)n, sizeof(uint64_t), cmp_u64);
	int m = 0;
	for (int i = 0; i < n; i++)
		if (!m || d->marks[i] - d->marks[m - 1] >= min_gap)
			d->marks[m++] = d->marks[i];
	d->n_marks = m;
}

static int urg_rmbe(uint16_t port)
{
	static struct diag_rec recs[MAX_DIAG];
	int n = diag_dump(recs, MAX_DIAG), len = 0;
	for (int i = 0; i < n; i++)
		if (ntohs(recs[i].msg.id.idiag_sport) == port && recs[i].has_conninfo)
			len = (int)recs[i].ci.rmbe_size;
	return len;
}

/* Both directions at once on one connection, urgent bytes at random points of each, c2s read
 * out of band (non-inline), s2c with SO_OOBINLINE; 16 KiB DMBs. */
static void sc_duplex(uint16_t port)
{
	int c, s, one = 1;
	if (urg_pair(port, 16384, &c, &s, URG_XFER_STEP_MS) < 0)
		return;
	kv_int("SO_OOBINLINE_client", setsockopt(c, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)));
	int len = urg_rmbe(port);
	kv_int("rmbe_size", len);
	pattern_init(0x5eed11);
	jkey("diag");
	jarr();
	json_diag_view("before", port);
	jarr_end();
	struct urg_dir d[2];
	memset(d, 0, sizeof(d));
	uint64_t L = (uint64_t)(len > 0 ? len : 16352);
	/* urgent bytes at ring boundaries too: the last slot of laps 0 and 3, the first slot of
	 * laps 2 and 5. Never two urgent bytes in a row here, and each send(MSG_OOB) waits for
	 * POLLOUT first, so no send(MSG_OOB) waits inside the kernel: a waiting one exposes
	 * urg_data_pending to the other direction's CDCs (urg-findings oob-blocked-send-duplex),
	 * which this scenario must not hit at random. */
	uint64_t fixed[] = { L - 1, 2 * L, 4 * L - 1, 5 * L };
	d[0] = (struct urg_dir){ .name = "c2s", .wfd = c, .rfd = s, .inline_ = 0, .port = port,
				 .total = 4u << 20, .max_chunk = 9000, .seed = 0x5eed11 };
	d[1] = (struct urg_dir){ .name = "s2c", .wfd = s, .rfd = c, .inline_ = 1, .port = port,
				 .total = 4u << 20, .max_chunk = 9000, .seed = 0x5eed12 };
	d[0].oob_gate = d[1].oob_gate = 1;
	urg_marks(&d[0], 100, fixed, 4, 2);
	urg_marks(&d[1], 100, fixed, 4, 2);
	urg_run(d, 2, port, 20, 150, 100);
	jkey("diag_after");
	jarr();
	json_diag_view("after", port);
	jarr_end();
	close(c);
	close(s);
}

/* (5) Urgent bytes at many points of a transfer past the 16-bit wrap-counter overflow of a
 * 16 KiB DMB; the last one sits in the last slot before the overflow (stream index
 * 65536 * len - 1: lap 0xffff, slot len - 1): urg_curs becomes (wrap 0, count 0). The writer
 * sends that one only once the reader has read everything before it, so the reader is at the
 * mark when it arrives (the order in which the plain-recv() workaround works at every other
 * mark). */
static void sc_urg_wrap(uint16_t port)
{
	int c, s;
	if (urg_pair(port, 16384, &c, &s, URG_XFER_STEP_MS) < 0)
		return;
	int len = urg_rmbe(port);
	kv_int("rmbe_size", len);
	if (len <= 0) {
		fail("no rmbe_size from smc_diag");
		close(c);
		close(s);
		return;
	}
	pattern_init(0x5eed14);
	jkey("diag");
	jarr();
	json_diag_view("before", port);
	jarr_end();
	uint64_t L = (uint64_t)len, last = 65536 * L - 1;
	uint64_t fixed[72];
	int nf = 0;
	/* controls: the last slot of ordinary laps (urg_curs count 0, wrap w+1) and the first
	 * slot of the lap after the next one. Never two urgent bytes in a row: the writer's next
	 * urgent byte may then arrive before the reader's recv(MSG_OOB), which would read it at
	 * its mark - the oob-at-mark fault of urg-findings, not what this scenario is about. */
	uint64_t laps[] = { 0, 1, 255, 256, 4095, 32767, 32768, 65533 };
	for (size_t i = 0; i < sizeof(laps) / sizeof(laps[0]); i++) {
		fixed[nf++] = laps[i] * L + L - 1;
		fixed[nf++] = (laps[i] + 2) * L;
	}
	fixed[nf++] = last;
	struct urg_dir d;
	memset(&d, 0, sizeof(d));
	d = (struct urg_dir){ .name = "c2s", .wfd = c, .rfd = s, .inline_ = 0, .port = port,
			      .total = last + 1 + 4096, .max_chunk = 262144, .seed = 0x5eed14 };
	urg_marks(&d, 48, fixed, nf, 2);
	kv_uint("overflow_mark", last);
	d.sync_at = last;
	urg_run(&d, 1, port, 1000, 200, 300);
	jkey("diag_after");
	jarr();
	json_diag_view("after", port);
	jarr_end();
	close(c);
	close(s);
}

/* (6) The stale urgent state after a non-inline skip. smc_rx_update_consumer skips an urgent
 * byte (comp(cons, urg_curs) == 1) without leaving SMC_URG_VALID; only a read that ends more
 * than one byte past urg_curs (comp < -1) sets SMC_URG_READ, and smc_curs_comp orders by the
 * 16-bit wrap alone. Here the urgent byte sits in the last slot of lap 0xfffe (stream index
 * 65535 * len - 1), so urg_curs = (0xffff, 0); the reader skips it with a plain recv(), then
 * reads exactly one full ring in one recv(): its cursor goes from (0xffff, 0) to (0, 0), never
 * past urg_curs by the kernel's order, and the state stays VALID. From then on every read that
 * ends at count len - 1 compares as "one before the urgent byte" and skips a real byte.
 * Phase 1 is the urg-wrap transfer (writer and reader threads) up to the urgent byte; phase 2
 * runs bounded steps in this thread, comparing every byte read with the stream. */
struct ph {
	int c, s;
	uint16_t port;
	uint64_t sent, pos, rcvd;
	int64_t bad_at; /* first stream index read wrong, -1: none */
	uint64_t n_bad, step_bad; /* bytes read wrong: in all, in the current step */
	int bad_exp, bad_got;
	char bad_step[64];
	int stalled;
};

static void ph_cmp(struct ph *x, const char *name, const unsigned char *buf, size_t n)
{
	for (size_t j = 0; j < n; j++)
		if (buf[j] != urg_byte(x->pos + j)) {
			x->n_bad++;
			x->step_bad++;
			if (x->bad_at >= 0)
				continue;
			x->bad_at = (int64_t)(x->pos + j);
			x->bad_exp = urg_byte(x->pos + j);
			x->bad_got = buf[j];
			snprintf(x->bad_step, sizeof(x->bad_step), "%s", name);
		}
	x->pos += n;
	x->rcvd += n;
}

static void ph_step_end(struct ph *x, const char *name, int stall)
{
	kv_int("inq", inq(x->s));
	kv_uint("bad", x->step_bad);
	x->step_bad = 0;
	kv_uint("sent", x->sent);
	kv_uint("read_pos", x->pos);
	if (stall) {
		x->stalled = 1;
		kv_bool("stall", 1);
	}
	jkey("diag");
	json_diag_view(name, x->port);
	jobj_end();
}

/* send n stream bytes (blocking, each call bounded by SO_SNDTIMEO) */
static void ph_send(struct ph *x, const char *name, uint64_t n)
{
	step = name;
	uint64_t t0 = now_us(), done = 0;
	ssize_t w = 0;
	int err = 0;
	while (done < n) {
		errno = 0;
		w = send(x->c, pattern + (x->sent % PATTERN_LEN), (size_t)(n - done), MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = errno;
			break;
		}
		done += (uint64_t)w;
		x->sent += (uint64_t)w;
	}
	jobj();
	kv_str("step", name);
	kv_int("rc", (int64_t)done);
	kv_int("errno", done < n ? err : 0);
	kv_uint("ms", (now_us() - t0) / 1000);
	ph_step_end(x, name, done < n && (err == EAGAIN || err == EWOULDBLOCK));
}

/* wait (bounded) until SIOCINQ shows at least n bytes */
static void ph_wait_inq(struct ph *x, const char *name, int n)
{
	step = name;
	uint64_t t0 = now_us();
	int v = inq(x->s);
	while (v < n && now_us() - t0 < (uint64_t)URG_XFER_STEP_MS * 1000u) {
		msleep(2);
		v = inq(x->s);
	}
	jobj();
	kv_str("step", name);
	kv_int("rc", v);
	kv_uint("ms", (now_us() - t0) / 1000);
	ph_step_end(x, name, v < n);
}

/* one non-blocking recv() of at most n bytes, compared with the stream */
static void ph_recv(struct ph *x, const char *name, size_t n)
{
	static unsigned char buf[65536];
	step = name;
	uint64_t t0 = now_us();
	uint64_t at = x->pos;
	errno = 0;
	ssize_t r = recv(x->s, buf, n < sizeof(buf) ? n : sizeof(buf), MSG_DONTWAIT);
	int err = errno;
	if (r > 0)
		ph_cmp(x, name, buf, (size_t)r);
	jobj();
	kv_str("step", name);
	kv_int("rc", r);
	kv_int("errno", r < 0 ? err : 0);
	kv_uint("ms", (now_us() - t0) / 1000);
	kv_uint("from", at);
	if (r > 0) {
		jhex("head", buf, r < 8 ? r : 8);
		jhex("expected_head", pattern + (at % PATTERN_LEN), r < 8 ? r : 8);
		jhex("tail", buf + (r > 8 ? r - 8 : 0), r < 8 ? r : 8);
		jhex("expected_tail", pattern + ((at + (uint64_t)(r > 8 ? r - 8 : 0)) % PATTERN_LEN),
		     r < 8 ? r : 8);
	}
	ph_step_end(x, name, 0);
}

/* move n more stream bytes: non-blocking sends and reads in turn, bounded */
static void ph_xfer(struct ph *x, const char *name, uint64_t n)
{
	static unsigned char buf[65536];
	step = name;
	uint64_t t0 = now_us(), s_end = x->sent + n, r_end = x->pos + n;
	while (x->pos < r_end && now_us() - t0 < (uint64_t)URG_XFER_STEP_MS * 1000u) {
		if (x->sent < s_end) {
			ssize_t w = send(x->c, pattern + (x->sent % PATTERN_LEN),
					 (size_t)(s_end - x->sent), MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				x->sent += (uint64_t)w;
		}
		struct pollfd p = { x->s, POLLIN, 0 };
		poll(&p, 1, 10);
		uint64_t want = r_end - x->pos;
		ssize_t r = recv(x->s, buf, want < sizeof(buf) ? (size_t)want : sizeof(buf),
				 MSG_DONTWAIT);
		if (r > 0)
			ph_cmp(x, name, buf, (size_t)r);
	}
	jobj();
	kv_str("step", name);
	kv_int("rc", (int64_t)(x->pos - (r_end - n)));
	kv_uint("ms", (now_us() - t0) / 1000);
	ph_step_end(x, name, x->pos < r_end);
}

static void sc_urg_phantom(uint16_t port)
{
	int c, s;
	if (urg_pair(port, 16384, &c, &s, URG_XFER_STEP_MS) < 0)
		return;
	int len = urg_rmbe(port);
	kv_int("rmbe_size", len);
	if (len <= 0) {
		fail("no rmbe_size from smc_diag");
		close(c);
		close(s);
		return;
	}
	pattern_init(0x5eed15);
	jkey("diag");
	jarr();
	json_diag_view("before", port);
	jarr_end();
	uint64_t L = (uint64_t)len, mark = 65535 * L - 1;
	kv_uint("urgent_mark", mark);
	struct urg_dir d;
	memset(&d, 0, sizeof(d));
	d = (struct urg_dir){ .name = "c2s", .wfd = c, .rfd = s, .inline_ = 0, .port = port,
			      .total = mark + 1, .max_chunk = 262144, .seed = 0x5eed15 };
	urg_marks(&d, 0, &mark, 1, 2);
	d.sync_at = mark; /* the reader has read everything before it when it arrives */
	urg_run(&d, 1, port, 1000, 200, 300);
	struct ph x = { .c = c, .s = s, .port = port, .sent = d.sent, .pos = d.pos, .bad_at = -1 };
	int ready = d.sent == mark + 1 && d.pos == mark && d.mismatch_at < 0 && !d.w_stall &&
		    !d.r_stall;
	kv_bool("phase1_ok", ready);
	jkey("steps");
	jarr();
	if (ready) {
		msleep(30);
		s_poll("s poll (the urgent byte arrived)", s, URG_STEP_MS);
		/* a plain recv() at the mark: smc_rx_recvmsg_data_available skips the urgent
		 * byte (EAGAIN); the stream goes on after it */
		x.pos = mark + 1;
		ph_recv(&x, "s recv plain (skips the urgent byte)", 256);
		ph_send(&x, "c send len", L);
		ph_wait_inq(&x, "s SIOCINQ len", len);
		ph_recv(&x, "s recv len (one full ring)", L);
		ph_send(&x, "c send len again", L);
		ph_wait_inq(&x, "s SIOCINQ len again", len);
		ph_recv(&x, "s recv len-1", L - 1);
		ph_recv(&x, "s recv the rest", 256);
		ph_xfer(&x, "transfer 2 len more", 2 * L);
	}
	jarr_end();
	kv_uint("sent", x.sent);
	kv_uint("read_pos", x.pos);
	kv_uint("received_after_mark", x.rcvd);
	kv_int("first_bad", x.bad_at);
	kv_uint("bytes_bad", x.n_bad);
	kv_int("first_bad_expected", x.bad_at >= 0 ? x.bad_exp : -1);
	kv_int("first_bad_got", x.bad_at >= 0 ? x.bad_got : -1);
	kv_str("first_bad_step", x.bad_step);
	kv_bool("phase2_stall", x.stalled);
	jkey("diag_after");
	jarr();
	json_diag_view("after", port);
	jarr_end();
	close(c);
	close(s);
}

static const struct scen URG_SCENS[] = {
	{ "urg-basic", "MSG_OOB non-inline and SO_OOBINLINE, SIOCATMARK, on fresh SMC-D pairs", 40,
	  sc_urg_basic },
	{ "duplex", "both directions at once, urgent bytes at random points (OOB and inline)", 120,
	  sc_duplex },
	{ "urg-findings", "urgent-data faults: recv(MSG_OOB) at the mark, failed MSG_OOB send, "
	  "SIOCATMARK without urgent data, MSG_OOB|MSG_MORE", 60, sc_urg_findings },
	{ "urg-wrap", "urgent bytes across the 16-bit wrap overflow of a 16 KiB DMB (~1.07 GB)",
	  900, sc_urg_wrap },
	{ "urg-phantom", "a skipped urgent byte at the end of lap 0xfffe, then one full-ring "
	  "read: later reads skip real bytes (~1.07 GB)", 900, sc_urg_phantom },
};

#define N_URG_SCENS (int)(sizeof(URG_SCENS) / sizeof(URG_SCENS[0]))
