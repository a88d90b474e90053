/*
 * smcd-check guest harness, part 2: a hostile CLC peer for the real kernel (issue 15).
 *
 * #included by harness.c (one translation unit: it uses the harness's JSON writer, smc_diag
 * reader, UEID netlink calls and serve-mode reply helpers), so the build command stays
 * `gcc -O2 -static -pthread harness.c`.
 *
 * Why a BPF program: Linux starts the CLC handshake only when the SYN (server side) or the
 * SYN-ACK (client side) carried the SMC experimental TCP option (kind 254, length >= 6, magic
 * 0xE2D4C3D9; net/ipv4/tcp_input.c smc_parse_options, smc_check_reset_syn), and only kernel
 * AF_SMC sockets write it (tcp_output.c smc_set_option). A BPF_PROG_TYPE_SOCK_OPS program
 * attached to a cgroup v2 (BPF_CGROUP_SOCK_OPS) can write TCP header options for the plain TCP
 * sockets of the processes in that cgroup: at TCP_LISTEN_CB / TCP_CONNECT_CB it sets
 * BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG; then, for a SYN or SYN-ACK, HDR_OPT_LEN_CB reserves 6
 * bytes (bpf_reserve_hdr_opt) and WRITE_HDR_OPT_CB stores `fe 06 e2 d4 c3 d9`
 * (bpf_store_hdr_opt). The program (28 instructions) is loaded with raw bpf(2) calls; the
 * interpreter runs it (no JIT in the guest kernel). A socket's cgroup is fixed when it is
 * created, so the process joins the cgroup before it opens any socket. Kernel AF_SMC sockets of
 * the same process get the program too: bpf_store_hdr_opt then returns -EEXIST (the kernel
 * wrote its own option already), which is harmless.
 *
 * With that, a plain TCP socket of this program is an "SMC peer" to the kernel, and it reads and
 * writes raw CLC bytes on it: as a server to a kernel AF_SMC client (answer its Proposal with
 * any bytes), as a client to a kernel AF_SMC listener (send any Proposal, then any Confirm).
 *
 * Handshake endpoints (serve mode, used by conformance/kernel/target.py):
 *
 *   peer_init                 BPF + cgroup, this boot's loopback-ism GIDs (from a kernel
 *                             client's Proposal), a donor DMB (see peer_setup), one purge
 *   peer_ueids -|HEX,HEX..    set the kernel's UEID table (flush, then add each)
 *   peer_purge                make every link group whose peer is this host's own GID
 *                             unusable (so the next kernel server makes first contact)
 *   peer_quiet MS             how long an endpoint may stay silent after input before it is
 *                             reported as waiting (default 300)
 *   hsc RCVBUF | hss RCVBUF   a kernel client (connecting to our listener) or a kernel server
 *                             (our socket connects to its listener); RCVBUF 0 = default
 *   hsf EP HEX                our socket sends these bytes to the kernel endpoint
 *   hsff EP HEX               the same, then shuts down its sending side (FIN)
 *   hsp EP                    our socket sends the kernel's own Proposal (real GIDs, UEID)
 *   hsfin EP                  our socket shuts down its sending side (FIN)
 *   hso EP MS                 only observe for MS milliseconds
 *   hsi EP                    smc_diag of the kernel socket (dmbinfo: GIDs, tokens)
 *
 * Every hs* reply is one line: `@@SMCD-R ok ep=N out=HEX,HEX|- rest=HEX|- done=0|1 err=E
 * mode=M reason=R pdiag=P state=S eof=0|1 dstate=NAMES|- kmsg=HEX|-`:
 *   out    the complete CLC messages the kernel sent since the last reply (framed by length)
 *   done   the kernel endpoint finished its handshake: client: the non-blocking connect
 *          completed (err = SO_ERROR); server: the listen work ended - accept() returned the
 *          socket (err 0) or the listener turned readable and accept() found nothing: the
 *          kernel dropped a socket that ended in error (smc_listen_out_err; err = -1: the
 *          errno of such a socket is not observable)
 *   mode/reason/pdiag/state   smc_diag of the finished socket (mode SMCD / FALLBACK_TCP,
 *          fallback reason, peer diagnosis, sk_state)
 *   dstate tasks in uninterruptible sleep when the observation timed out (a hang)
 *   kmsg   kernel log records of level warning or worse since the last reply (hex text)
 *
 * Scenarios (smcd-check kernel run NAME) that settle what was read from the 6.12 source:
 * peer-gid-unchecked, peer-attach-fail, peer-accept-v3 and peer-syncerr-first (these two leave a
 * kernel worker dead or stuck: run each alone).
 */
#include <dirent.h>
#include <linux/bpf.h>
#include <sys/mount.h>
#include <sys/syscall.h>

#define CG_ROOT "/sys/fs/cgroup"
#define CG_DIR CG_ROOT "/smcd-peer"
#define BPF_MARK "/tmp/.smcd-peer-bpf"

static char peer_why[512]; /* why the peer cannot work (empty: it works) */

/* ------------------------------------------------------------------ the BPF program */

static struct bpf_insn pinsn[48];
static int pn;
enum { LB_SET, LB_LEN, LB_WRITE, LB_OUT, LB_COUNT };
static int plabel[LB_COUNT];
static int pfix_at[16], pfix_label[16], pnfix;

static void pi(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn in;
	memset(&in, 0, sizeof(in));
	in.code = code;
	in.dst_reg = dst & 15;
	in.src_reg = src & 15;
	in.off = off;
	in.imm = imm;
	pinsn[pn++] = in;
}

static void pjmp(uint8_t code, uint8_t dst, int32_t imm, int label)
{
	pfix_at[pnfix] = pn;
	pfix_label[pnfix++] = label;
	pi(code, dst, 0, 0, imm);
}

#define CTX_OFF(f) ((int16_t)offsetof(struct bpf_sock_ops, f))

static int build_prog(void)
{
	pn = pnfix = 0;
	pi(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0);			/* r6 = ctx */
	pi(BPF_LDX | BPF_MEM | BPF_W, 2, 6, CTX_OFF(op), 0);		/* r2 = ctx->op */
	pjmp(BPF_JMP | BPF_JEQ | BPF_K, 2, BPF_SOCK_OPS_TCP_LISTEN_CB, LB_SET);
	pjmp(BPF_JMP | BPF_JEQ | BPF_K, 2, BPF_SOCK_OPS_TCP_CONNECT_CB, LB_SET);
	pjmp(BPF_JMP | BPF_JEQ | BPF_K, 2, BPF_SOCK_OPS_HDR_OPT_LEN_CB, LB_LEN);
	pjmp(BPF_JMP | BPF_JEQ | BPF_K, 2, BPF_SOCK_OPS_WRITE_HDR_OPT_CB, LB_WRITE);
	pjmp(BPF_JMP | BPF_JA, 0, 0, LB_OUT);
	plabel[LB_SET] = pn; /* bpf_sock_ops_cb_flags_set(ctx, flags | WRITE_HDR_OPT) */
	pi(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0);
	pi(BPF_LDX | BPF_MEM | BPF_W, 2, 6, CTX_OFF(bpf_sock_ops_cb_flags), 0);
	pi(BPF_ALU64 | BPF_OR | BPF_K, 2, 0, 0, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
	pi(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sock_ops_cb_flags_set);
	pjmp(BPF_JMP | BPF_JA, 0, 0, LB_OUT);
	plabel[LB_LEN] = pn; /* on a SYN / SYN-ACK: bpf_reserve_hdr_opt(ctx, 6, 0) */
	pi(BPF_LDX | BPF_MEM | BPF_W, 2, 6, CTX_OFF(skb_tcp_flags), 0);
	pi(BPF_ALU64 | BPF_AND | BPF_K, 2, 0, 0, 0x02);
	pjmp(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, LB_OUT);
	pi(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0);
	pi(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 6);
	pi(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, 0);
	pi(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_reserve_hdr_opt);
	pjmp(BPF_JMP | BPF_JA, 0, 0, LB_OUT);
	plabel[LB_WRITE] = pn; /* on a SYN / SYN-ACK: store fe 06 e2 d4 c3 d9 */
	pi(BPF_LDX | BPF_MEM | BPF_W, 2, 6, CTX_OFF(skb_tcp_flags), 0);
	pi(BPF_ALU64 | BPF_AND | BPF_K, 2, 0, 0, 0x02);
	pjmp(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, LB_OUT);
	pi(BPF_ST | BPF_MEM | BPF_W, 10, 0, -8, (int32_t)0xd4e206feu); /* fe 06 e2 d4 (LE) */
	pi(BPF_ST | BPF_MEM | BPF_H, 10, 0, -4, 0xd9c3);		 /* c3 d9 */
	pi(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0);
	pi(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0);
	pi(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -8);
	pi(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, 6);
	pi(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0);
	pi(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_store_hdr_opt);
	plabel[LB_OUT] = pn; /* return 1 */
	pi(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
	pi(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	for (int i = 0; i < pnfix; i++)
		pinsn[pfix_at[i]].off = (int16_t)(plabel[pfix_label[i]] - pfix_at[i] - 1);
	return pn;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	return w < 0 ? -e : 0;
}

/* Mount cgroup2, create our cgroup, load and attach the program (once per boot), and move this
 * process into the cgroup. Returns 0, or -1 with peer_why saying what failed. */
static int peer_bpf(void)
{
	if (mount("none", CG_ROOT, "cgroup2", 0, NULL) < 0 && errno != EBUSY) {
		snprintf(peer_why, sizeof(peer_why), "mount cgroup2 on %s: %s", CG_ROOT,
			 strerror(errno));
		return -1;
	}
	if (mkdir(CG_DIR, 0755) < 0 && errno != EEXIST) {
		snprintf(peer_why, sizeof(peer_why), "mkdir %s: %s", CG_DIR, strerror(errno));
		return -1;
	}
	if (access(BPF_MARK, F_OK) != 0) {
		static char log[16384];
		union bpf_attr a;
		int n = build_prog();
		memset(&a, 0, sizeof(a));
		a.prog_type = BPF_PROG_TYPE_SOCK_OPS;
		a.insn_cnt = (uint32_t)n;
		a.insns = (uint64_t)(uintptr_t)pinsn;
		a.license = (uint64_t)(uintptr_t) "GPL";
		a.log_level = 1;
		a.log_size = sizeof(log);
		a.log_buf = (uint64_t)(uintptr_t)log;
		log[0] = 0;
		int prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
		if (prog < 0) {
			int e = errno;
			char *last = strrchr(log, '\n');
			while (last && last > log && last[1] == 0) {
				*last = 0;
				last = strrchr(log, '\n');
			}
			snprintf(peer_why, sizeof(peer_why), "BPF_PROG_LOAD (sock_ops): %s; verifier: %.300s",
				 strerror(e), last ? last + 1 : log);
			return -1;
		}
		int cg = open(CG_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg < 0) {
			snprintf(peer_why, sizeof(peer_why), "open %s: %s", CG_DIR, strerror(errno));
			close(prog);
			return -1;
		}
		memset(&a, 0, sizeof(a));
		a.target_fd = (uint32_t)cg;
		a.attach_bpf_fd = (uint32_t)prog;
		a.attach_type = BPF_CGROUP_SOCK_OPS;
		if (sys_bpf(BPF_PROG_ATTACH, &a) < 0) {
			snprintf(peer_why, sizeof(peer_why), "BPF_PROG_ATTACH (cgroup sock_ops): %s",
				 strerror(errno));
			close(cg);
			close(prog);
			return -1;
		}
		close(cg);
		close(prog); /* the attachment holds the program */
		int m = open(BPF_MARK, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (m >= 0)
			close(m);
	}
	char pid[32];
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	int rc = write_file(CG_DIR "/cgroup.procs", pid);
	if (rc < 0) {
		snprintf(peer_why, sizeof(peer_why), "join cgroup %s: %s", CG_DIR, strerror(-rc));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ kernel log and hangs */

static int kmsg_fd = -1;

static void kmsg_open(void)
{
	if (kmsg_fd >= 0)
		return;
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd >= 0)
		lseek(kmsg_fd, 0, SEEK_END); /* only what happens from now on */
}

/* Kernel log records of level <= 4 (warning) since the last call, appended to out (text,
 * one record a line). Oops and WARN reports are at these levels (and the Oops banner is
 * printed with console_verbose()). */
static size_t kmsg_take(char *out, size_t cap)
{
	size_t n = 0;
	if (kmsg_fd < 0 || cap == 0)
		return 0;
	out[0] = 0;
	char rec[2048];
	for (;;) {
		ssize_t r = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (r < 0) {
			if (errno == EPIPE)
				continue; /* overwritten records: go on with the next */
			break;
		}
		rec[r] = 0;
		int pri = atoi(rec);
		char *msg = strchr(rec, ';');
		if (!msg || (pri & 7) > 4)
			continue;
		msg++;
		char *nl = strchr(msg, '\n');
		if (nl)
			*nl = 0;
		size_t l = strlen(msg);
		if (n + l + 2 < cap) {
			memcpy(out + n, msg, l);
			n += l;
			out[n++] = '\n';
			out[n] = 0;
		}
	}
	return n;
}

/* Names of tasks in uninterruptible sleep ("D"), comma separated, into out. */
static void dstate_tasks(char *out, size_t cap)
{
	size_t n = 0;
	out[0] = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[64], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = 0;
		char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
		if (!lp || !rp || rp[1] != ' ' || rp[2] != 'D')
			continue;
		*rp = 0;
		int l = snprintf(out + n, cap - n, "%s%s/%s", n ? "," : "", de->d_name, lp + 1);
		if (l > 0 && (size_t)l < cap - n)
			n += (size_t)l;
	}
	closedir(d);
	for (char *p = out; *p; p++)
		if (*p == ' ')
			*p = '_';
}

/* ------------------------------------------------------------------ CLC packing */

static const unsigned char EYE_R[4] = { 0xe2, 0xd4, 0xc3, 0xd9 };
static const unsigned char EYE_D[4] = { 0xe2, 0xd4, 0xc3, 0xc4 };

static uint64_t be64_at(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint16_t be16_at(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }

struct acc_spec {
	int ctype;	/* 2 Accept, 3 Confirm */
	int version;	/* header version nibble */
	int first;	/* first contact (typev2 bit 1, plus the 52-byte extension) */
	uint64_t gid, gid_ext, token;
	int dmbe_size;	/* compressed size code (0 = 16 KiB) */
	uint16_t chid;
	uint32_t linkid_raw; /* written as host-order bytes, like the kernel's lgr->id */
};

/* An SMC-D v2 Accept/Confirm as Linux builds it (smcd_clc_prep_confirm_accept,
 * smc_clc_fill_fce_v2x): 78 bytes, or 130 with the first-contact extension. */
static size_t build_accept(unsigned char *m, const struct acc_spec *s)
{
	size_t len = s->first ? 130 : 78;
	memset(m, 0, len);
	memcpy(m, EYE_D, 4);
	m[4] = (unsigned char)s->ctype;
	m[5] = (unsigned char)(len >> 8);
	m[6] = (unsigned char)len;
	m[7] = (unsigned char)((s->version & 15) << 4 | (s->first ? 2 : 0) << 2 | 1 /* D */);
	put_be64(m + 8, s->gid);
	put_be64(m + 16, s->token);
	m[24] = 0;				/* dmbe_idx */
	m[25] = (unsigned char)(s->dmbe_size << 4); /* dmbe_size:4, reserved:4 */
	memcpy(m + 28, &s->linkid_raw, 4);
	m[32] = (unsigned char)(s->chid >> 8);
	m[33] = (unsigned char)s->chid;
	memset(m + 34, ' ', 32);		/* eid: the harness's UEID, blank padded */
	memcpy(m + 34, UEID, strlen(UEID));
	put_be64(m + 66, s->gid_ext);
	if (s->first) {
		m[74] = 0;			/* reserved */
		m[75] = 2 << 4 | 1;		/* os_type Linux, release 1 */
		memset(m + 78, ' ', 32);	/* hostname */
		memcpy(m + 78, "smcd-peer", 9);
		m[112] = 0;			/* v2x: max_conns, max_links (SMC-R only) */
		m[114] = 0;
		m[115] = 1;			/* feature_mask: SMC_SPF_EMULATED_ISM_DEV */
	}
	memcpy(m + len - 4, EYE_D, 4);
	return len;
}

/* A v2 Decline (44 bytes); out_of_sync sets typev2 bit 1 (SMC_FIRST_CONTACT_MASK). */
static size_t build_decline(unsigned char *m, uint32_t code, int out_of_sync)
{
	memset(m, 0, 44);
	memcpy(m, EYE_R, 4);
	m[4] = 4;
	m[6] = 44;
	m[7] = (unsigned char)(2 << 4 | (out_of_sync ? 2 : 0) << 2);
	m[16] = (unsigned char)(code >> 24);
	m[17] = (unsigned char)(code >> 16);
	m[18] = (unsigned char)(code >> 8);
	m[19] = (unsigned char)code;
	m[20] = 2 << 4; /* os_type Linux */
	memcpy(m + 40, EYE_R, 4);
	return 44;
}

/* The GID/CHID entries of a v2 Proposal: fills gid, gid_ext of the first emulated device
 * (CHID 0xFF00..0xFFFF takes two entries). Returns 0, or -1 if the layout has none. */
static int proposal_gids(const unsigned char *p, size_t n, uint64_t *gid, uint64_t *gid_ext)
{
	if (n < 80 || p[4] != 1)
		return -1;
	size_t v2 = 52 + be16_at(p + 50);
	if (v2 + 40 > n)
		return -1;
	int gcnt = p[v2 + 1];
	size_t d2 = v2 + 8 + be16_at(p + v2 + 6);
	size_t e = d2 + 48;
	for (int i = 0; i + 1 < gcnt && e + 20 <= n; i++, e += 10) {
		if ((be16_at(p + e + 8) & 0xff00) == 0xff00) {
			*gid = be64_at(p + e);
			*gid_ext = be64_at(p + e + 10);
			return 0;
		}
	}
	return -1;
}

/* ------------------------------------------------------------------ endpoints */

struct hs_ep {
	int used;
	int role;	/* 0: kernel client (we are the server), 1: kernel server (we are the client) */
	int kfd;	/* client: the kernel AF_SMC socket; server: the kernel AF_SMC listener */
	int kacc;	/* server: the socket accept() returned (-1 until then) */
	int pfd;	/* our plain TCP socket */
	int done, err, eof;
	int mode, state;
	uint32_t reason, pdiag;
	uint64_t my_gid, peer_gid, token, peer_token;
	int has_dmb;
	unsigned char rx[8192];
	size_t rxlen;
	/* messages framed since the last report */
	unsigned char *out[16];
	size_t outlen[16];
	int nout;
};

#define HS_MAX 48
static struct hs_ep eps[HS_MAX];
static uint16_t hs_port = 23000;
static unsigned hs_quiet_ms = 300;

static void ep_clear_out(struct hs_ep *e)
{
	for (int i = 0; i < e->nout; i++)
		free(e->out[i]);
	e->nout = 0;
}

static void ep_close(struct hs_ep *e)
{
	if (!e->used)
		return;
	if (e->pfd >= 0)
		close(e->pfd);
	if (e->kacc >= 0)
		close(e->kacc);
	if (e->kfd >= 0)
		close(e->kfd);
	ep_clear_out(e);
	memset(e, 0, sizeof(*e));
}

static struct hs_ep *ep_new(int role)
{
	for (int i = 0; i < HS_MAX; i++) {
		if (!eps[i].used) {
			struct hs_ep *e = &eps[i];
			memset(e, 0, sizeof(*e));
			e->used = 1;
			e->role = role;
			e->kfd = e->kacc = e->pfd = -1;
			return e;
		}
	}
	return NULL;
}

static int ep_index(const struct hs_ep *e) { return (int)(e - eps); }

static int plain_listener(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct addr a = mkaddr(0, port);
	if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int plain_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct addr a = mkaddr(0, port);
	if (connect(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Fill mode/state/reason/pdiag (and the DMB record) of the kernel socket fd from smc_diag. */
static void ep_diag(struct hs_ep *e, int fd)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	static struct diag_rec recs[MAX_DIAG];
	int n = diag_dump(recs, MAX_DIAG);
	for (int i = 0; i < n; i++) {
		if (recs[i].msg.diag_inode != st.st_ino)
			continue;
		e->mode = recs[i].msg.diag_mode;
		e->state = recs[i].msg.diag_state;
		if (recs[i].has_fallback) {
			e->reason = recs[i].fb.reason;
			e->pdiag = recs[i].fb.peer_diagnosis;
		}
		if (recs[i].has_dmbinfo) {
			e->has_dmb = 1;
			e->my_gid = recs[i].dmb.my_gid;
			e->peer_gid = recs[i].dmb.peer_gid;
			e->token = recs[i].dmb.token;
			e->peer_token = recs[i].dmb.peer_token;
		}
		return;
	}
}

/* Take complete CLC messages off the receive buffer (framed by the header's length). */
static void ep_frame(struct hs_ep *e, int *got_type)
{
	while (e->rxlen >= 8 && e->nout < 16) {
		size_t len = be16_at(e->rx + 5);
		if (len < 8)
			len = e->rxlen; /* not CLC: report what is there as one piece */
		if (e->rxlen < len)
			break;
		e->out[e->nout] = malloc(len);
		memcpy(e->out[e->nout], e->rx, len);
		e->outlen[e->nout++] = len;
		*got_type = e->rx[4];
		memmove(e->rx, e->rx + len, e->rxlen - len);
		e->rxlen -= len;
	}
}

/* Observe the kernel endpoint for at most wait_ms: read what it sends, notice when its
 * handshake ends. Returns early when the kernel must be waiting for us (it sent a Proposal or
 * an Accept) or its handshake ended. Returns 1 if it timed out with nothing decided. */
static int ep_pump(struct hs_ep *e, unsigned wait_ms)
{
	uint64_t deadline = now_us() + (uint64_t)wait_ms * 1000u;
	uint64_t finish_by = 0; /* after done: drain for a few ms more */
	for (;;) {
		unsigned char buf[4096];
		ssize_t r;
		while ((r = recv(e->pfd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
			size_t take = (size_t)r;
			if (take > sizeof(e->rx) - e->rxlen)
				take = sizeof(e->rx) - e->rxlen;
			memcpy(e->rx + e->rxlen, buf, take);
			e->rxlen += take;
		}
		if (r == 0)
			e->eof = 1;
		int t = -1;
		ep_frame(e, &t);
		if (!e->done) {
			if (e->role == 0) {
				struct pollfd p = { e->kfd, POLLOUT | POLLERR | POLLHUP, 0 };
				if (poll(&p, 1, 0) > 0 && p.revents) {
					int so = 0;
					socklen_t sl = sizeof(so);
					getsockopt(e->kfd, SOL_SOCKET, SO_ERROR, &so, &sl);
					e->done = 1;
					e->err = so;
					ep_diag(e, e->kfd);
				}
			} else {
				struct pollfd p = { e->kfd, POLLIN, 0 };
				if (poll(&p, 1, 0) > 0) {
					int fd = accept4(e->kfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
					if (fd >= 0) {
						e->kacc = fd;
						e->done = 1;
						e->err = 0;
						ep_diag(e, fd);
					} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
						/* the listen work ended with an error: the socket was
						 * queued closed and accept() dropped it */
						e->done = 1;
						e->err = -1;
					}
				}
			}
			if (e->done)
				finish_by = now_us() + 15000;
		}
		uint64_t now = now_us();
		if (e->done && now >= finish_by)
			return 0;
		if (!e->done) {
			/* the kernel now waits for us: client sent its Proposal, server its Accept */
			if ((e->role == 0 && t == 1) || (e->role == 1 && t == 2))
				return 0;
			if (now >= deadline)
				return 1;
		}
		uint64_t until = e->done ? finish_by : deadline;
		int ms = (int)((until - now) / 1000u) + 1;
		if (ms > 10)
			ms = 10;
		struct pollfd p[2] = { { e->pfd, POLLIN, 0 },
				       { e->kfd, e->role == 0 ? POLLOUT : POLLIN, 0 } };
		poll(p, e->done ? 1 : 2, ms);
	}
}

static void hexcat(char **o, const unsigned char *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		*(*o)++ = hx[p[i] >> 4];
		*(*o)++ = hx[p[i] & 15];
	}
}

static void ep_reply(struct hs_ep *e, int timed_out)
{
	static char kbuf[4096], dbuf[1024];
	size_t kn = kmsg_take(kbuf, sizeof(kbuf));
	dbuf[0] = 0;
	if (timed_out)
		dstate_tasks(dbuf, sizeof(dbuf));
	size_t need = 512 + 2 * (e->rxlen + kn);
	for (int i = 0; i < e->nout; i++)
		need += 2 * e->outlen[i] + 1;
	if (need > reply_cap) {
		reply_cap = need * 2;
		reply_buf = realloc(reply_buf, reply_cap);
	}
	char *o = reply_buf;
	o += sprintf(o, "@@SMCD-R ok ep=%d out=", ep_index(e));
	if (!e->nout)
		*o++ = '-';
	for (int i = 0; i < e->nout; i++) {
		if (i)
			*o++ = ',';
		hexcat(&o, e->out[i], e->outlen[i]);
	}
	o += sprintf(o, " rest=");
	if (!e->rxlen)
		*o++ = '-';
	hexcat(&o, e->rx, e->rxlen);
	o += sprintf(o, " done=%d err=%d mode=%d reason=%u pdiag=%u state=%d eof=%d dstate=%s kmsg=",
		     e->done, e->err, e->mode, e->reason, e->pdiag, e->state, e->eof,
		     dbuf[0] ? dbuf : "-");
	if (!kn)
		*o++ = '-';
	hexcat(&o, (const unsigned char *)kbuf, kn);
	*o++ = '\n';
	write_all_fd(1, reply_buf, (size_t)(o - reply_buf));
	ep_clear_out(e);
}

/* A kernel client: AF_SMC non-blocking connect to our plain listener; returns once it sent
 * its Proposal (or ended). */
static struct hs_ep *hs_client(int rcvbuf, unsigned wait_ms)
{
	struct hs_ep *e = ep_new(0);
	if (!e)
		return NULL;
	uint16_t port = hs_port++;
	int l = plain_listener(port);
	int k = socket(AF_SMC_, SOCK_STREAM | SOCK_CLOEXEC, SMCPROTO_SMC);
	if (l < 0 || k < 0) {
		if (l >= 0)
			close(l);
		if (k >= 0)
			close(k);
		ep_close(e);
		return NULL;
	}
	if (rcvbuf > 0)
		setsockopt(k, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	fcntl(k, F_SETFL, O_NONBLOCK);
	struct addr a = mkaddr(0, port);
	connect(k, (struct sockaddr *)&a.ss, a.len); /* EINPROGRESS */
	e->kfd = k;
	struct pollfd p = { l, POLLIN, 0 };
	if (poll(&p, 1, 3000) > 0)
		e->pfd = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	close(l);
	if (e->pfd < 0) {
		ep_close(e);
		return NULL;
	}
	ep_pump(e, wait_ms);
	return e;
}

/* A kernel server: AF_SMC listener, our plain socket connects to it. */
static struct hs_ep *hs_server(int rcvbuf, unsigned wait_ms)
{
	struct hs_ep *e = ep_new(1);
	if (!e)
		return NULL;
	uint16_t port = hs_port++;
	int l = server(K_SMC, 0, port, 4, rcvbuf, 0);
	if (l < 0) {
		scen_error[0] = 0;
		ep_close(e);
		return NULL;
	}
	fcntl(l, F_SETFL, O_NONBLOCK);
	e->kfd = l;
	e->pfd = plain_connect(port);
	if (e->pfd < 0) {
		ep_close(e);
		return NULL;
	}
	ep_pump(e, wait_ms);
	return e;
}

static int ep_send(struct hs_ep *e, const unsigned char *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = send(e->pfd, p + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN) {
				struct pollfd pf = { e->pfd, POLLOUT, 0 };
				if (poll(&pf, 1, 1000) <= 0)
					return -1;
				continue;
			}
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

/* ------------------------------------------------------------------ boot-wide peer state */

static int peer_ready;			/* peer_setup succeeded in this process */
static uint64_t lo_gid, lo_gid_ext;	/* this boot's loopback-ism GID pair */
static uint64_t donor_token;		/* a DMB that exists and belongs to no own-GID link group */
static unsigned char k_prop[1024];	/* a Proposal the kernel itself sent (real GIDs, UEID) */
static size_t k_prop_len;
static unsigned char k_host[32];	/* the kernel's first-contact host name */
static struct hs_ep *donor_ep;		/* the kernel client holding the donor DMB (never closed) */
static unsigned char donor_acc[160];	/* the Accept we sent it (a random peer GID) */
static size_t donor_acc_len;
static uint64_t rng_state;

static uint64_t rnd64(void)
{
	if (!rng_state)
		rng_state = now_us() * 0x9E3779B97F4A7C15ULL | 1;
	return rng_next(&rng_state);
}

/* DMB size code (smc_compress_bufsize for SMC-D): 16 KiB << code. */
static int dmbe_code(uint32_t rmbe_size)
{
	uint32_t len = rmbe_size + 32; /* diag shows the DMB minus the CDC header */
	int c = 0;
	while ((16384u << c) < len && c < 6)
		c++;
	return c;
}

/*
 * Make every link group whose peer is this host's own loopback-ism GID unusable, so that a
 * kernel server's next Accept makes first contact (smc_conn_create reuses any SMC-D link group
 * of the same device and peer GID, whoever created it). One round: our client proposes with
 * the kernel's own Proposal and the kernel server accepts, reusing a link group or creating one.
 *  - reused (no first contact): we decline with the out-of-sync bit; smc_clc_wait_msg sets the
 *    link group's sync_err and schedules its termination: it is never reused again;
 *  - first contact: no reusable link group was left; we decline plainly and smc_listen_decline
 *    -> smc_conn_abort -> smc_lgr_cleanup_early frees the new one. (Not with the out-of-sync
 *    bit: on a first-contact link group that leaves the listen worker deadlocked on its own
 *    socket lock - see the peer-syncerr-first scenario.)
 * Returns the number of rounds, or -1 (peer_why).
 */
static int peer_purge(void)
{
	ueid_add();
	for (int round = 1; round <= 12; round++) {
		struct hs_ep *e = hs_server(0, 60);
		if (!e) {
			snprintf(peer_why, sizeof(peer_why), "purge: cannot open a kernel listener");
			return -1;
		}
		ep_send(e, k_prop, k_prop_len);
		ep_pump(e, 3000);
		int first = -1;
		uint32_t code = 0;
		for (int i = 0; i < e->nout; i++) {
			if (e->out[i][4] == 2)
				first = (e->out[i][7] >> 2 & 3) & 2 ? 1 : 0;
			if (e->out[i][4] == 4 && e->outlen[i] >= 20)
				code = (uint32_t)be64_at(e->out[i] + 12);
		}
		if (first < 0) {
			snprintf(peer_why, sizeof(peer_why),
				 "purge: the kernel server did not accept its own Proposal (decline "
				 "0x%08x, done %d)", code, e->done);
			ep_close(e);
			return -1;
		}
		unsigned char d[44];
		build_decline(d, first ? 0x03030000u : 0x04000000u /* SYNCERR */, !first);
		ep_clear_out(e);
		ep_send(e, d, sizeof(d));
		ep_pump(e, 3000);
		int ok = e->done;
		ep_close(e);
		if (!ok) {
			snprintf(peer_why, sizeof(peer_why),
				 "purge: the kernel server did not finish after our Decline (round %d)",
				 round);
			return -1;
		}
		if (first)
			return round;
	}
	snprintf(peer_why, sizeof(peer_why), "purge: still reusing a link group after 12 rounds");
	return -1;
}

/*
 * Everything a peer needs once per boot (idempotent in one process):
 *  1. BPF program + cgroup;
 *  2. a kernel client's Proposal: this boot's GID pair, and Proposal bytes to reuse;
 *  3. a donor DMB: a DMB that exists on loopback-ism and belongs to a link group no case
 *     touches. A kernel-kernel pair B gives a DMB token; the kernel client of step 2 gets an
 *     Accept from us naming B's DMB and a random peer GID: it attaches that DMB and answers
 *     with a Confirm carrying its own DMB token - the donor. That client stays open (its link
 *     group's peer is the random GID, so no case and no purge reuses it);
 *  4. close B and purge (also proves that our SYN option works towards a kernel listener).
 */
static int peer_setup(void)
{
	if (peer_ready)
		return 0;
	peer_why[0] = 0;
	kmsg_open();
	if (peer_bpf() < 0)
		return -1;
	if (ueid_add() < 0) {
		snprintf(peer_why, sizeof(peer_why), "cannot add the UEID over generic netlink");
		return -1;
	}
	/* B: a kernel-kernel SMC-D pair, for a DMB token */
	uint16_t bport = hs_port++;
	int bl = server(K_SMC, 0, bport, 4, 0, 0);
	int bc = bl >= 0 ? client(K_SMC, 0, bport, 0, 0) : -1;
	int bs = bc >= 0 ? accept_to(bl, 3000) : -1;
	scen_error[0] = 0;
	if (bl >= 0)
		close(bl);
	struct hs_ep tmp;
	memset(&tmp, 0, sizeof(tmp));
	ep_diag(&tmp, bs);
	if (bs < 0 || tmp.mode != 2 || !tmp.has_dmb) {
		snprintf(peer_why, sizeof(peer_why),
			 "no SMC-D connection between two kernel sockets (mode %d)", tmp.mode);
		goto fail_b;
	}
	uint64_t tb = tmp.token;
	/* the donor client */
	struct hs_ep *e = hs_client(0, 3000);
	if (!e) {
		snprintf(peer_why, sizeof(peer_why), "a kernel client did not connect to our listener");
		goto fail_b;
	}
	if (e->nout < 1 || e->out[0][4] != 1) {
		snprintf(peer_why, sizeof(peer_why),
			 "the kernel client sent no Proposal to our listener (done %d, mode %d, reason "
			 "0x%08x): the SMC option on our SYN-ACK was not taken", e->done, e->mode,
			 e->reason);
		ep_close(e);
		goto fail_b;
	}
	k_prop_len = e->outlen[0] < sizeof(k_prop) ? e->outlen[0] : sizeof(k_prop);
	memcpy(k_prop, e->out[0], k_prop_len);
	if (proposal_gids(k_prop, k_prop_len, &lo_gid, &lo_gid_ext) < 0) {
		snprintf(peer_why, sizeof(peer_why), "the kernel's Proposal has no loopback-ism GID");
		ep_close(e);
		goto fail_b;
	}
	ep_clear_out(e);
	struct acc_spec s = { .ctype = 2, .version = 2, .first = 1, .gid = rnd64(),
			      .gid_ext = rnd64(), .token = tb, .dmbe_size = dmbe_code(0),
			      .chid = 0xffff, .linkid_raw = 0x100 };
	unsigned char acc[160];
	{
		/* B's DMB size: its rmbe_size via the pair's diag */
		static struct diag_rec recs[MAX_DIAG];
		struct stat st;
		int n = diag_dump(recs, MAX_DIAG);
		fstat(bs, &st);
		for (int i = 0; i < n; i++)
			if (recs[i].msg.diag_inode == st.st_ino && recs[i].has_conninfo)
				s.dmbe_size = dmbe_code(recs[i].ci.rmbe_size);
	}
	size_t al = build_accept(acc, &s);
	memcpy(donor_acc, acc, al);
	donor_acc_len = al;
	ep_send(e, acc, al);
	ep_pump(e, 3000);
	int confirm = -1;
	for (int i = 0; i < e->nout; i++)
		if (e->out[i][4] == 3)
			confirm = i;
	if (!e->done || e->err || e->mode != 2 || confirm < 0 || e->outlen[confirm] < 110) {
		snprintf(peer_why, sizeof(peer_why),
			 "the kernel client did not become SMC-D active on our Accept (done %d, err %d, "
			 "mode %d, reason 0x%08x)", e->done, e->err, e->mode, e->reason);
		ep_close(e);
		goto fail_b;
	}
	donor_token = be64_at(e->out[confirm] + 16);
	memcpy(k_host, e->out[confirm] + 78, 32);
	ep_clear_out(e);
	donor_ep = e;
	close(bc);
	close(bs);
	peer_ready = 1;
	if (peer_purge() < 0) {
		peer_ready = 0;
		return -1;
	}
	return 0;
fail_b:
	if (bc >= 0)
		close(bc);
	if (bs >= 0)
		close(bs);
	return -1;
}

/* ------------------------------------------------------------------ serve-mode commands */

static struct hs_ep *ep_arg(const char *a)
{
	if (!a)
		return NULL;
	int i = atoi(a);
	if (i < 0 || i >= HS_MAX || !eps[i].used || &eps[i] == donor_ep)
		return NULL;
	return &eps[i];
}

static int unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
		if (h < 0 || l < 0)
			return -1;
		out[i] = (unsigned char)(h << 4 | l);
	}
	return (int)(n / 2);
}

static void peer_reset(void)
{
	for (int i = 0; i < HS_MAX; i++)
		if (&eps[i] != donor_ep)
			ep_close(&eps[i]);
}

/* Set the UEID table: "-" = empty, else comma-separated hex of each UEID. */
static int peer_ueids(const char *arg)
{
	int rc = ueid_flush();
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (!arg || !strcmp(arg, "-"))
		return 0;
	char *copy = strdup(arg), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char eid[SMC_MAX_EID_LEN + 1];
		int n = unhex(t, (unsigned char *)eid, SMC_MAX_EID_LEN);
		if (n < 0) {
			free(copy);
			return -EINVAL;
		}
		eid[n] = 0;
		rc = smc_genl(SMC_NETLINK_ADD_UEID, eid);
		if (rc < 0 && rc != -EEXIST) {
			free(copy);
			return rc;
		}
	}
	free(copy);
	return 0;
}

/* Returns 1 if the command was one of ours (and answered). "reset" is shared: we close our
 * endpoints and return 0 so the harness resets its handles too. */
static int peer_serve(const char *cmd, const char *a1, const char *a2)
{
	if (!strcmp(cmd, "reset")) {
		peer_reset();
		return 0;
	}
	if (!strcmp(cmd, "peer_init")) {
		if (peer_setup() < 0) {
			for (char *p = peer_why; *p; p++)
				if (*p == '\n')
					*p = ' ';
			reply("@@SMCD-R err EOPNOTSUPP %s\n", peer_why);
			return 1;
		}
		char host[65], *o = host;
		hexcat(&o, k_host, 32);
		*o = 0;
		reply("@@SMCD-R ok gid=%llu gid_ext=%llu donor=%llu host=%s\n",
		      (unsigned long long)lo_gid, (unsigned long long)lo_gid_ext,
		      (unsigned long long)donor_token, host);
		return 1;
	}
	if (!strncmp(cmd, "peer_", 5) || !strncmp(cmd, "hs", 2)) {
		if (!peer_ready) {
			reply("@@SMCD-R err EOPNOTSUPP the peer is not set up (peer_init)\n");
			return 1;
		}
	} else {
		return 0;
	}
	if (!strcmp(cmd, "peer_purge")) {
		int n = peer_purge();
		if (n < 0)
			reply("@@SMCD-R err EIO %s\n", peer_why);
		else
			reply("@@SMCD-R ok rounds=%d\n", n);
		return 1;
	}
	if (!strcmp(cmd, "peer_ueids")) {
		int rc = peer_ueids(a1);
		if (rc < 0)
			reply("@@SMCD-R err %s setting the UEID table: %s\n", errname(-rc), strerror(-rc));
		else
			reply("@@SMCD-R ok\n");
		return 1;
	}
	if (!strcmp(cmd, "peer_quiet")) {
		int ms = a1 ? atoi(a1) : 0;
		if (ms > 0 && ms < 60000)
			hs_quiet_ms = (unsigned)ms;
		reply("@@SMCD-R ok quiet=%u\n", hs_quiet_ms);
		return 1;
	}
	if (!strcmp(cmd, "hsc") || !strcmp(cmd, "hss")) {
		int rcv = a1 ? atoi(a1) : 0;
		struct hs_ep *e = cmd[2] == 'c' ? hs_client(rcv, 3000) : hs_server(rcv, 60);
		if (!e) {
			reply("@@SMCD-R err EIO cannot open the endpoint's sockets\n");
			return 1;
		}
		int timed_out = cmd[2] == 'c' && !e->done && !e->nout;
		ep_reply(e, timed_out);
		return 1;
	}
	struct hs_ep *e = ep_arg(a1);
	if (!e) {
		reply("@@SMCD-R err EBADF unknown endpoint\n");
		return 1;
	}
	if (!strcmp(cmd, "hsf") || !strcmp(cmd, "hsff") || !strcmp(cmd, "hsp")) {
		static unsigned char buf[1 << 16];
		int n;
		if (!strcmp(cmd, "hsp")) { /* the kernel's own Proposal (real GIDs, harness UEID) */
			memcpy(buf, k_prop, k_prop_len);
			n = (int)k_prop_len;
		} else {
			n = a2 && strcmp(a2, "-") ? unhex(a2, buf, sizeof(buf)) : 0;
		}
		if (n < 0) {
			reply("@@SMCD-R err EINVAL bad hex\n");
			return 1;
		}
		if (n && ep_send(e, buf, (size_t)n) < 0) {
			int er = errno;
			reply("@@SMCD-R err %s sending to the kernel: %s\n", errname(er), strerror(er));
			return 1;
		}
		if (cmd[3] == 'f') /* hsff: and then FIN */
			shutdown(e->pfd, SHUT_WR);
		ep_reply(e, ep_pump(e, hs_quiet_ms));
		return 1;
	}
	if (!strcmp(cmd, "hsfin")) {
		shutdown(e->pfd, SHUT_WR);
		ep_reply(e, ep_pump(e, hs_quiet_ms));
		return 1;
	}
	if (!strcmp(cmd, "hso")) {
		unsigned ms = a2 ? (unsigned)atoi(a2) : hs_quiet_ms;
		ep_reply(e, ep_pump(e, ms));
		return 1;
	}
	if (!strcmp(cmd, "hsi")) {
		ep_diag(e, e->role == 0 ? e->kfd : e->kacc);
		reply("@@SMCD-R ok mode=%d state=%d my_gid=%llu peer_gid=%llu token=%llu "
		      "peer_token=%llu\n", e->mode, e->state, (unsigned long long)e->my_gid,
		      (unsigned long long)e->peer_gid, (unsigned long long)e->token,
		      (unsigned long long)e->peer_token);
		return 1;
	}
	reply("@@SMCD-R err EINVAL unknown command %s\n", cmd);
	return 1;
}

/* ------------------------------------------------------------------ scenarios */

/* A scenario that leaves a kernel worker stuck keeps its sockets open in a sleeping grandchild:
 * closing them could block the scenario's exit forever (smc_release -> cancel_work_sync on a
 * worker that died or sleeps in D state), and the harness waits for it. */
static void keep_sockets_open(void)
{
	fflush(stdout);
	if (fork() == 0) {
		for (;;)
			pause();
	}
}


static void json_hex(const char *k, const unsigned char *p, size_t n)
{
	char *s = malloc(2 * n + 1), *o = s;
	hexcat(&o, p, n);
	*o = 0;
	kv_str(k, s);
	free(s);
}

static void json_ep(const char *k, struct hs_ep *e)
{
	jkey(k);
	jobj();
	kv_int("done", e->done);
	kv_int("err", e->err);
	kv_int("mode", e->mode);
	kv_int("state", e->state);
	kv_uint("reason", e->reason);
	kv_uint("peer_diagnosis", e->pdiag);
	kv_int("eof", e->eof);
	if (e->has_dmb) {
		kv_uint("my_gid", e->my_gid);
		kv_uint("peer_gid", e->peer_gid);
		kv_uint("token", e->token);
		kv_uint("peer_token", e->peer_token);
	}
	jkey("sent");
	jarr();
	for (int i = 0; i < e->nout; i++) {
		char *s = malloc(2 * e->outlen[i] + 1), *o = s;
		hexcat(&o, e->out[i], e->outlen[i]);
		*o = 0;
		jstr(s);
		free(s);
	}
	jarr_end();
	jobj_end();
}

static void json_kmsg(const char *k)
{
	static char kb[8192];
	size_t n = kmsg_take(kb, sizeof(kb));
	jkey(k);
	jarr();
	char *save = NULL;
	for (char *t = n ? strtok_r(kb, "\n", &save) : NULL; t; t = strtok_r(NULL, "\n", &save))
		jstr(t);
	jarr_end();
}

static int scen_setup(void)
{
	if (peer_setup() < 0) {
		fail("peer setup: %s", peer_why);
		kv_str("unsupported", peer_why);
		return -1;
	}
	kv_uint("lo_gid", lo_gid);
	kv_uint("lo_gid_ext", lo_gid_ext);
	kv_uint("donor_token", donor_token);
	json_hex("kernel_proposal", k_prop, k_prop_len);
	json_hex("donor_accept", donor_acc, donor_acc_len);
	return 0;
}

/*
 * The client does not check the Accept's GID; the server does not check the Confirm's GID and
 * CHID (af_smc.c smc_connect_ism, smcd_conn_save_peer_info; smc_listen_work).
 *  client: the donor client of peer_setup got an Accept from a random GID, first contact, and
 *          went SMC-D active with that GID as its peer (smc_diag's dmbinfo peer_gid);
 *  server: our client proposes properly, the kernel server accepts; our Confirm names a random
 *          GID and gid_ext and CHID 0x1234 (not loopback-ism's 0xFFFF) and the server's own DMB
 *          token (it exists): the server goes active with the random GID as its peer.
 */
static void sc_peer_gid_unchecked(uint16_t port)
{
	(void)port;
	if (scen_setup() < 0)
		return;
	step = "client: the donor client's diag";
	ep_diag(donor_ep, donor_ep->kfd);
	json_ep("client", donor_ep);
	step = "server: Proposal";
	struct hs_ep *e = hs_server(0, 60);
	if (!e) {
		fail("cannot open a kernel listener");
		return;
	}
	ep_send(e, k_prop, k_prop_len);
	ep_pump(e, 3000);
	int acc = -1;
	for (int i = 0; i < e->nout; i++)
		if (e->out[i][4] == 2)
			acc = i;
	if (acc < 0 || e->outlen[acc] < 78) {
		json_ep("server", e);
		fail("the kernel server sent no Accept");
		ep_close(e);
		return;
	}
	json_hex("server_accept", e->out[acc], e->outlen[acc]);
	unsigned char conf[160];
	memcpy(conf, e->out[acc], e->outlen[acc]);
	size_t cl = e->outlen[acc];
	uint64_t fg = rnd64(), fge = rnd64();
	conf[4] = 3;			/* Confirm */
	put_be64(conf + 8, fg);		/* a GID that is not this host's */
	put_be64(conf + 66, fge);
	conf[32] = 0x12;		/* CHID 0x1234 */
	conf[33] = 0x34;
	/* the token stays: the server's own DMB (it exists, so smcd_buf_attach succeeds) */
	kv_uint("confirm_gid", fg);
	kv_uint("confirm_gid_ext", fge);
	kv_uint("confirm_chid", 0x1234);
	json_hex("confirm", conf, cl);
	ep_clear_out(e);
	step = "server: Confirm";
	ep_send(e, conf, cl);
	ep_pump(e, 3000);
	json_ep("server", e);
	json_kmsg("kmsg");
	ep_close(e);
}

/*
 * An Accept whose CLC version nibble is 3 (otherwise a valid first-contact v2 Accept from a
 * loopback-ism peer). smc_clc_wait_msg refuses only version < 1, smc_connect_check_aclc takes
 * >= 2 as v2, smc_connect_ism determines the CHID only for version == 2 and leaves
 * ism_selected 0, and a client that offered no SMC-Dv1 device has ism_dev[0] == NULL, which
 * smc_conn_create dereferences. Crashes the guest's handshake worker: run it alone.
 */
static void sc_peer_accept_v3(uint16_t port)
{
	(void)port;
	if (scen_setup() < 0)
		return;
	step = "kernel client: Proposal";
	struct hs_ep *e = hs_client(0, 3000);
	if (!e || e->nout < 1) {
		fail("the kernel client sent no Proposal");
		return;
	}
	json_hex("proposal", e->out[0], e->outlen[0]);
	ep_clear_out(e);
	struct acc_spec s = { .ctype = 2, .version = 3, .first = 1, .gid = rnd64(),
			      .gid_ext = rnd64(), .token = donor_token, .dmbe_size = 2,
			      .chid = 0xffff, .linkid_raw = 0x100 };
	unsigned char acc[160];
	size_t al = build_accept(acc, &s);
	json_hex("accept", acc, al);
	step = "kernel client: Accept version 3";
	ep_send(e, acc, al);
	int timed_out = ep_pump(e, 2500);
	json_ep("client", e);
	kv_bool("client_timed_out", timed_out);
	char d[1024];
	dstate_tasks(d, sizeof(d));
	kv_str("dstate", d);
	json_kmsg("kmsg");
	/* is the handshake of an unrelated kernel-kernel connection still possible? */
	step = "a later kernel-kernel connection";
	uint16_t p2 = hs_port++;
	int l = server(K_SMC, 0, p2, 4, 0, 0);
	int c = mksock(K_SMC, 0);
	fcntl(c, F_SETFL, O_NONBLOCK);
	struct addr a = mkaddr(0, p2);
	connect(c, (struct sockaddr *)&a.ss, a.len);
	struct pollfd p = { c, POLLOUT, 0 };
	int r = poll(&p, 1, 2500);
	kv_int("later_connect_completed", r > 0);
	struct pollfd pl = { l, POLLIN, 0 };
	kv_int("later_accept_ready", poll(&pl, 1, 500) > 0);
	dstate_tasks(d, sizeof(d));
	kv_str("dstate_after", d);
	json_kmsg("kmsg_after");
	scen_error[0] = 0;
	keep_sockets_open();
}

/*
 * A server-side smcd_buf_attach failure, with real kernels on both ends: we relay the CLC
 * messages between a kernel client and a kernel server, and change only the DMB token in the
 * client's Confirm to one that does not exist. The server's attach fails: smc_listen_work
 * declines with a negative code (no Decline is sent, the socket is dropped); the client went
 * SMC-D active when it sent its Confirm and nothing tells it otherwise.
 *
 * Then what the active client can do: its ghost sndbuf is still the server's DMB, which
 * smc_conn_abort / smc_buf_unuse returned to the link group's pool, still registered. A new
 * kernel-kernel connection that gets that DMB from the pool (same size, same link group) is
 * then written to by the orphaned client: its send() lands in the new connection's DMB and its
 * CDC message (move_data with signal, to the old token) raises the new connection's interrupt.
 */
static void sc_peer_attach_fail(uint16_t port)
{
	(void)port;
	if (scen_setup() < 0)
		return;
	step = "purge";
	kv_int("purge_rounds", peer_purge());
	/* a kernel-kernel pair first, kept open: the relay's server then reuses its link group, so
	 * the failed connection's DMB goes back to that link group's pool (smc_buf_unuse) instead
	 * of being freed with a first-contact link group (smc_lgr_cleanup_early) */
	step = "a kernel-kernel pair";
	uint16_t p0 = hs_port++;
	int l0 = server(K_SMC, 0, p0, 4, 0, 0);
	int c0 = l0 >= 0 ? client(K_SMC, 0, p0, 0, 0) : -1;
	int s0 = c0 >= 0 ? accept_to(l0, 3000) : -1;
	scen_error[0] = 0;
	kv_int("pair_ok", s0 >= 0);
	step = "relay: Proposal";
	struct hs_ep *c = hs_client(0, 3000);
	struct hs_ep *s = hs_server(0, 60);
	if (!c || !s || c->nout < 1) {
		fail("cannot set up the relay");
		return;
	}
	ep_send(s, c->out[0], c->outlen[0]);
	json_hex("proposal", c->out[0], c->outlen[0]);
	ep_clear_out(c);
	ep_pump(s, 3000);
	if (s->nout < 1 || s->out[0][4] != 2) {
		json_ep("server", s);
		fail("the kernel server did not accept the kernel client's Proposal");
		return;
	}
	uint64_t server_token = be64_at(s->out[0] + 16);
	kv_uint("server_dmb_token", server_token);
	kv_int("accept_first_contact", (s->out[0][7] >> 2 & 3) & 2 ? 1 : 0);
	json_hex("accept", s->out[0], s->outlen[0]);
	step = "relay: Accept";
	ep_send(c, s->out[0], s->outlen[0]);
	ep_clear_out(s);
	ep_pump(c, 3000);
	int conf = -1;
	for (int i = 0; i < c->nout; i++)
		if (c->out[i][4] == 3)
			conf = i;
	if (conf < 0) {
		json_ep("client", c);
		fail("the kernel client sent no Confirm");
		return;
	}
	unsigned char cf[160];
	size_t cl = c->outlen[conf] < sizeof(cf) ? c->outlen[conf] : sizeof(cf);
	memcpy(cf, c->out[conf], cl);
	json_hex("confirm", cf, cl);
	uint64_t bogus = rnd64();
	put_be64(cf + 16, bogus);
	kv_uint("confirm_token_sent", bogus);
	step = "relay: Confirm with a token that does not exist";
	ep_send(s, cf, cl);
	ep_pump(s, 3000);
	ep_diag(c, c->kfd);
	json_ep("client", c);
	json_ep("server", s);
	kv_uint("client_peer_token", c->peer_token);
	json_kmsg("kmsg");
	if (!(c->done && c->mode == 2 && s->done && s->err))
		return; /* the claim did not hold: the host reports it */
	/* a later connection that gets the server's DMB back from the pool */
	int got = 0, pc = -1, ps = -1;
	jkey("later");
	jarr();
	for (int i = 0; i < 4 && !got; i++) {
		uint16_t p = hs_port++;
		int l = server(K_SMC, 0, p, 4, 0, 0);
		pc = l >= 0 ? client(K_SMC, 0, p, 0, 0) : -1;
		ps = pc >= 0 ? accept_to(l, 3000) : -1;
		scen_error[0] = 0;
		if (l >= 0)
			close(l);
		struct hs_ep t;
		memset(&t, 0, sizeof(t));
		ep_diag(&t, ps);
		jobj();
		kv_int("mode", t.mode);
		kv_uint("server_token", t.token);
		kv_uint("server_peer_token", t.peer_token);
		jobj_end();
		if (t.has_dmb && t.token == server_token) {
			got = 1;
			break;
		}
		if (pc >= 0)
			close(pc);
		if (ps >= 0)
			close(ps);
		pc = ps = -1;
	}
	jarr_end();
	kv_bool("dmb_reused", got);
	if (!got)
		return;
	step = "the orphaned client sends";
	const char *z = "ZOMBIE-WRITES-INTO-ANOTHER-CONNECTION";
	fcntl(c->kfd, F_SETFL, 0);
	kv_int("orphan_send", (int)send(c->kfd, z, strlen(z), MSG_NOSIGNAL | MSG_DONTWAIT));
	msleep(200);
	char buf[256];
	memset(buf, 0, sizeof(buf));
	ssize_t r = recv(ps, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	kv_int("new_server_recv", (int)r);
	if (r > 0)
		json_hex("new_server_got", (unsigned char *)buf, (size_t)r);
	kv_bool("new_server_got_orphan_bytes", r > 0 && memmem(buf, (size_t)r, z, strlen(z)) != NULL);
	/* and the legitimate peer of the new connection: does its data still arrive intact? */
	const char *m = "LEGIT";
	send(pc, m, strlen(m), MSG_NOSIGNAL);
	msleep(100);
	memset(buf, 0, sizeof(buf));
	r = recv(ps, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	kv_int("new_server_recv_after_legit", (int)r);
	if (r > 0)
		json_hex("new_server_got_after_legit", (unsigned char *)buf, (size_t)r);
	json_kmsg("kmsg_after");
	close(pc);
	close(ps);
	(void)c0;
}

/*
 * A Decline with the out-of-sync bit (SMC_FIRST_CONTACT_MASK in typev2) sent to a kernel server
 * that is waiting for the Confirm of a first-contact handshake. smc_clc_wait_msg sets the new
 * link group's sync_err and smc_lgr_terminate_sched unlists it (list_del_init) and schedules its
 * termination; smc_listen_decline -> smc_conn_abort -> smc_conn_free then skips
 * smc_lgr_unregister_conn (the link group is no longer listed), and smc_lgr_cleanup_early ->
 * __smc_lgr_terminate finds the connection still registered and calls lock_sock() on its
 * socket - which smc_listen_work holds since it started. The worker sleeps in D state for good.
 * For comparison the same Decline after a reused link group (no first contact).
 */
static void sc_peer_syncerr_first(uint16_t port)
{
	(void)port;
	if (scen_setup() < 0)
		return;
	int rounds[2];
	jkey("cases");
	jarr();
	for (int reuse = 0; reuse < 2; reuse++) {
		step = "purge";
		rounds[reuse] = peer_purge();
		if (reuse) {
			/* a kernel-kernel pair first: its link groups are then reused (kept open) */
			step = "a kernel-kernel pair";
			uint16_t p = hs_port++;
			int l = server(K_SMC, 0, p, 4, 0, 0);
			int c = l >= 0 ? client(K_SMC, 0, p, 0, 0) : -1;
			int a = c >= 0 ? accept_to(l, 3000) : -1;
			scen_error[0] = 0;
			(void)a;
		}
		step = "Proposal";
		struct hs_ep *e = hs_server(0, 60);
		if (!e) {
			fail("cannot open a kernel listener");
			break;
		}
		ep_send(e, k_prop, k_prop_len);
		ep_pump(e, 3000);
		jobj();
		kv_int("purge_rounds", rounds[reuse]);
		int first = -1;
		for (int i = 0; i < e->nout; i++)
			if (e->out[i][4] == 2) {
				first = (e->out[i][7] >> 2 & 3) & 2 ? 1 : 0;
				json_hex("accept", e->out[i], e->outlen[i]);
			}
		kv_int("accept_first_contact", first);
		unsigned char d[44];
		build_decline(d, 0x04000000u, 1);
		json_hex("decline", d, sizeof(d));
		ep_clear_out(e);
		step = "Decline with the out-of-sync bit";
		ep_send(e, d, sizeof(d));
		int timed_out = ep_pump(e, 3000);
		kv_bool("server_timed_out", timed_out);
		json_ep("server", e);
		char dd[1024];
		dstate_tasks(dd, sizeof(dd));
		kv_str("dstate", dd);
		json_kmsg("kmsg");
		jobj_end();
	}
	jarr_end();
	/* does an unrelated kernel-kernel handshake still work? */
	step = "a later kernel-kernel connection";
	uint16_t p2 = hs_port++;
	int l = server(K_SMC, 0, p2, 4, 0, 0);
	int c = l >= 0 ? client(K_SMC, 0, p2, 0, 0) : -1;
	int a = c >= 0 ? accept_to(l, 3000) : -1;
	struct hs_ep t;
	memset(&t, 0, sizeof(t));
	ep_diag(&t, a);
	kv_int("later_mode", t.mode);
	scen_error[0] = 0;
	keep_sockets_open();
}

static const struct scen PEER_SCENS[] = {
	{ "peer-gid-unchecked",
	  "user-space CLC peer: client takes any Accept GID, server any Confirm GID/CHID", 40,
	  sc_peer_gid_unchecked },
	{ "peer-attach-fail",
	  "kernel client <-> our relay <-> kernel server: the server's DMB attach fails", 40,
	  sc_peer_attach_fail },
	{ "peer-accept-v3",
	  "user-space CLC peer: an Accept with CLC version 3 (crashes the guest; run it alone)",
	  40, sc_peer_accept_v3 },
	{ "peer-syncerr-first",
	  "user-space CLC peer: out-of-sync Decline in a first-contact handshake (hangs a worker)",
	  40, sc_peer_syncerr_first },
};
#define N_PEER_SCENS (int)(sizeof(PEER_SCENS) / sizeof(PEER_SCENS[0]))
