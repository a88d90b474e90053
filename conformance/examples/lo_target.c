/*
 * lo_target.c - an SMC-D loopback-ism conformance target in C, written from
 * conformance/PROTOCOL.md alone: the device (device, device-nocopy), the cursor arithmetic
 * (cursor), connected pairs in copy and merged mode with their close machine (conn-copy,
 * conn-merged, conn-state), their link groups and DMBs (lgr-lifecycle), CDCs written by a
 * hostile peer (cdc-inject), stepped pairs (conn-steps), the link-group lens (link-group) and
 * pairs sending both ways with urgent data, SIOCATMARK and SO_OOBINLINE (urgent). The JSON of the session is in lo_json.c, the CLC codec (clc) in lo_clc.c and the handshake
 * endpoints (handshake) in lo_hs.c: every capability.
 *
 *   cc -std=c99 -O2 -Wall -Wextra -o lo_target lo_target.c lo_json.c lo_clc.c lo_hs.c
 *   smcd-check conform --target 'cmd:./lo_target' --strict --max-unsupported 0
 *
 * Build with -DNO_CDC_CHECKS for a mutant that acts on every CDC unchecked (as Linux 6.12.118
 * does): the cdc-rx cases fail.
 *
 * One request per line on stdin, one answer per line on stdout (PROTOCOL.md section 1). The
 * section numbers in the comments are PROTOCOL.md's.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lo_target.h"

/* ====================================================================== cursors (section 6) */

struct curs {
	uint16_t wrap;
	uint32_t count;
};

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

static struct curs c_add(unsigned int size, struct curs c, int value)
{
	c.count += (uint32_t)value;
	if (c.count >= size) {
		c.wrap++;
		c.count -= size;
	}
	return c;
}

static int c_diff(unsigned int size, struct curs o, struct curs n)
{
	if (o.wrap != n.wrap)
		return imax(0, (int)((size - o.count) + n.count));
	return imax(0, (int)(n.count - o.count));
}

static int c_comp(unsigned int size, struct curs o, struct curs n)
{
	if (o.wrap > n.wrap || (o.wrap == n.wrap && o.count > n.count))
		return -c_diff(size, n, o);
	return c_diff(size, o, n);
}

static int c_diff_large(unsigned int size, struct curs o, struct curs n)
{
	if (o.wrap < n.wrap)
		return imin((int)((size - o.count) + n.count + (uint32_t)(n.wrap - o.wrap - 1) * size),
			    (int)size);
	if (o.wrap > n.wrap)
		return imin((int)((size - o.count) + n.count +
				  (uint32_t)(n.wrap + 0xffff - o.wrap) * size), (int)size);
	return imax(0, (int)(n.count - o.count));
}

static int arg_curs(struct jval *args, const char *key, struct curs *c)
{
	struct jval *v = jget(args, key);

	if (!v || v->t != J_ARR || v->n != 2)
		return 0;
	for (int i = 0; i < 2; i++)
		if (v->items[i].t != J_NUM || v->items[i].neg || v->items[i].frac)
			return 0;
	if (v->items[0].u > 0xffff || v->items[1].u > 0xffffffffULL)
		return 0;
	c->wrap = (uint16_t)v->items[0].u;
	c->count = (uint32_t)v->items[1].u;
	return 1;
}

static void op_cursor(const char *op, struct jval *args)
{
	long long size, value;
	struct curs a, b;

	if (!arg_int(args, "size", 0, 0xffffffffLL, &size)) {
		fail("EINVAL", "size: expected an unsigned int");
		return;
	}
	if (!strcmp(op, "curs_add")) {
		if (!arg_curs(args, "curs", &a) ||
		    !arg_int(args, "value", -2147483648LL, 2147483647LL, &value)) {
			fail("EINVAL", "curs: expected [wrap, count], value an int");
			return;
		}
		a = c_add((unsigned)size, a, (int)value);
		ok_begin();
		out("\"curs\":[%u,%u]", a.wrap, a.count);
		ok_end();
		return;
	}
	if (!arg_curs(args, "old", &a) || !arg_curs(args, "new", &b)) {
		fail("EINVAL", "old/new: expected [wrap, count]");
		return;
	}
	ok_begin();
	if (!strcmp(op, "curs_diff"))
		out("\"value\":%d", c_diff((unsigned)size, a, b));
	else if (!strcmp(op, "curs_comp"))
		out("\"value\":%d", c_comp((unsigned)size, a, b));
	else
		out("\"value\":%d", c_diff_large((unsigned)size, a, b));
	ok_end();
}

/* ====================================================================== device (section 4) */

#define MAX_DMBS 5000
#define CDC_LEN 32

struct conn;

struct node {			/* a registered DMB */
	uint64_t token;
	int slot;
	uint32_t len;		/* the whole DMB, header included */
	int refcnt;
	uint8_t *mem;
};

struct lgr;

struct device {
	int nocopy;
	int removed;
	struct node *slots[MAX_DMBS];
	struct conn *conn[MAX_DMBS];	/* who takes the signals of a slot */
	int high;			/* slots in use are below this */
	int dmb_cnt;
	uint64_t seed;
	struct lgr **lgrs;		/* every link group not yet freed, creation order */
	int nlgrs;
	int lgr_cnt;
};

static uint64_t next_token(struct device *d)
{
	/* splitmix64: distinct enough; uniqueness among live DMBs is checked by the caller */
	uint64_t z = (d->seed += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct node *dev_lookup(struct device *d, uint64_t token)
{
	for (int i = 0; i < d->high; i++)
		if (d->slots[i] && d->slots[i]->token == token)
			return d->slots[i];
	return NULL;
}

static struct node *dev_register(struct device *d, uint32_t len)
{
	struct node *n;
	int slot;

	for (slot = 0; slot < MAX_DMBS && d->slots[slot]; slot++)
		;
	if (slot == MAX_DMBS)
		return NULL;
	n = calloc(1, sizeof(*n));
	do
		n->token = next_token(d);
	while (dev_lookup(d, n->token));
	n->slot = slot;
	n->len = len;
	n->refcnt = 1;
	n->mem = calloc(1, len);
	d->slots[slot] = n;
	if (slot >= d->high)
		d->high = slot + 1;
	d->dmb_cnt++;
	return n;
}

static void dev_put(struct device *d, struct node *n)
{
	if (--n->refcnt > 0)
		return;
	d->slots[n->slot] = NULL;
	d->conn[n->slot] = NULL;
	d->dmb_cnt--;
	free(n->mem);
	free(n);
}

static void dev_free(struct device *d)
{
	for (int i = 0; i < d->high; i++)
		if (d->slots[i]) {
			free(d->slots[i]->mem);
			free(d->slots[i]);
		}
	free(d->lgrs);
	memset(d, 0, sizeof(*d));
}

/* the dev_* operations: a device of their own (section 5, "connections have their own device") */
static struct device devops;

static void op_device(const char *op, struct jval *args)
{
	uint64_t token;
	struct node *n;

	if (!strcmp(op, "dev_register_dmb")) {
		long long size;

		if (!arg_int(args, "size", 1, 1LL << 30, &size)) {
			fail("EINVAL", "size: expected a DMB size");
			return;
		}
		n = dev_register(&devops, (uint32_t)size);
		if (!n) {
			fail("ENOSPC", "no free DMB slot");
			return;
		}
		ok_begin();
		out("\"token\":%llu,\"sba_idx\":%d,\"len\":%u", (unsigned long long)n->token,
		    n->slot, n->len);
		ok_end();
		return;
	}
	if (!strcmp(op, "dev_move_data")) {
		struct jval *sig = jget(args, "signal");
		long long offset;
		uint8_t *data;
		size_t len;

		if (sig && sig->t == J_BOOL && !sig->b) {
			ok_empty(); /* nocopy device: sf = 0 returns at once, no lookup */
			return;
		}
		if (!arg_u64(args, "token", &token) || !(n = dev_lookup(&devops, token))) {
			fail("EINVAL", "unknown DMB token");
			return;
		}
		if (!arg_int(args, "offset", 0, 1LL << 40, &offset) ||
		    !unhex(arg_str(args, "data") ? arg_str(args, "data") : "x", &data, &len)) {
			fail("EINVAL", "offset or data");
			return;
		}
		if ((unsigned long long)offset + len > n->len) {
			free(data);
			fail("EINVAL", "offset + size past the DMB");
			return;
		}
		memcpy(n->mem + offset, data, len);
		free(data);
		fail("EPIPE", "no connection is set for the slot (the bytes were copied)");
		return;
	}
	if (!arg_u64(args, "token", &token) || !(n = dev_lookup(&devops, token))) {
		fail("EINVAL", "unknown DMB token");
		return;
	}
	if (!strcmp(op, "dev_unregister_dmb") || !strcmp(op, "dev_detach_dmb")) {
		dev_put(&devops, n);
		ok_empty();
	} else if (!strcmp(op, "dev_attach_dmb")) {
		n->refcnt++;
		ok_begin();
		out("\"token\":%llu,\"sba_idx\":%d,\"len\":%u", (unsigned long long)n->token,
		    n->slot, n->len);
		ok_end();
	} else { /* dev_read_dmb */
		long long offset, size;

		if (!arg_int(args, "offset", 0, 1LL << 40, &offset) ||
		    !arg_int(args, "size", 0, 1LL << 40, &size) ||
		    (unsigned long long)(offset + size) > n->len) {
			fail("EINVAL", "outside the DMB");
			return;
		}
		ok_begin();
		out("\"data\":\"");
		out_hex(n->mem + offset, (size_t)size);
		out("\"");
		ok_end();
	}
}

/* ====================================================================== link groups (section 9) */

struct desc {			/* a DMB of a link group */
	uint64_t token;
	int slot;
	uint32_t size;
	int used;
	struct node *node;	/* NULL once the link group unregistered it */
};

struct lgr {
	int handle;
	struct device *dev;
	struct conn **conns;	/* registered, in registration order */
	int nconns;
	struct desc **rmbs;	/* newest first */
	int nrmbs;
	int refcnt;		/* its own + one per connection */
	int listed, terminating, free_scheduled, gone;
};

static struct lgr **all_lgrs;	/* by handle - 1 */
static int nall_lgrs;

static struct lgr *lgr_new(struct device *d)
{
	struct lgr *l = calloc(1, sizeof(*l));

	l->handle = ++nall_lgrs;
	all_lgrs = realloc(all_lgrs, nall_lgrs * sizeof(*all_lgrs));
	all_lgrs[nall_lgrs - 1] = l;
	l->dev = d;
	l->refcnt = 1;
	l->listed = 1;
	d->lgrs = realloc(d->lgrs, (d->nlgrs + 1) * sizeof(*d->lgrs));
	d->lgrs[d->nlgrs++] = l;
	d->lgr_cnt++;
	return l;
}

static struct lgr *lgr_find(struct device *d)
{
	/* smc_conn_create: the first listed link group; on one loopback-ism host every link group
	 * has the host itself as its peer, so smcd_lgr_match always holds */
	for (int i = 0; i < d->nlgrs; i++)
		if (d->lgrs[i]->listed && !d->lgrs[i]->gone)
			return d->lgrs[i];
	return NULL;
}

static void lgr_put(struct lgr *l)
{
	if (--l->refcnt > 0)
		return;
	for (int i = 0; i < l->nrmbs; i++) {	/* every DMB, used or not */
		struct desc *ds = l->rmbs[i];

		if (ds->node)
			dev_put(l->dev, ds->node);
		ds->node = NULL;
		ds->used = 0;
	}
	l->gone = 1;
	l->listed = 0;
	l->dev->lgr_cnt--;
}

static void lgr_register(struct lgr *l, struct conn *c)
{
	l->conns = realloc(l->conns, (l->nconns + 1) * sizeof(*l->conns));
	l->conns[l->nconns++] = c;
	l->free_scheduled = 0;
}

static void lgr_unregister(struct lgr *l, struct conn *c)
{
	for (int i = 0; i < l->nconns; i++)
		if (l->conns[i] == c) {
			memmove(l->conns + i, l->conns + i + 1, (l->nconns - i - 1) * sizeof(*l->conns));
			l->nconns--;
			return;
		}
}

/* ====================================================================== connections (5, 5b) */

enum sk_state { S_ACTIVE, S_PEERCLOSEWAIT1, S_PEERCLOSEWAIT2, S_APPCLOSEWAIT1, S_APPCLOSEWAIT2,
		S_APPFINCLOSEWAIT, S_PEERFINCLOSEWAIT, S_PEERABORTWAIT, S_PROCESSABORT, S_CLOSED };
static const char *const state_name[] = {
	"SMC_ACTIVE", "SMC_PEERCLOSEWAIT1", "SMC_PEERCLOSEWAIT2", "SMC_APPCLOSEWAIT1",
	"SMC_APPCLOSEWAIT2", "SMC_APPFINCLOSEWAIT", "SMC_PEERFINCLOSEWAIT", "SMC_PEERABORTWAIT",
	"SMC_PROCESSABORT", "SMC_CLOSED"};

#define F_DONE 0x80
#define F_CLOSED 0x40
#define F_ABORT 0x20
#define F_ANY_CLOSE (F_CLOSED | F_ABORT)
#define F_ANY (F_DONE | F_CLOSED | F_ABORT)
#define P_BLOCKED 0x80
#define P_URG_PENDING 0x40
#define P_URG_PRESENT 0x20
#define P_UPD_REQ 0x10
#define RCV_SHUTDOWN 1
#define SEND_SHUTDOWN 2

enum handle_status { H_OPEN, H_CLOSED, H_ABORTED };

/* enum smc_urg_state (net/smc/smc.h); smc_rx_init starts in READ */
enum urg_state { U_VALID = 1, U_NOTYET = 2, U_READ = 3 };

struct tcp {
	int fin_sent, fin_rcvd, reset;
	struct tcp *peer;
};

struct conn {
	int handle;
	int merged;
	struct device *dev;
	struct conn *peer;
	struct lgr *lgr;
	int registered, holds_lgr, first_contact;
	struct desc *rmb;
	uint64_t peer_token;
	struct node *ghost;	/* merged: the peer's DMB, attached */
	uint8_t *sndbuf;	/* copy: our own; merged: the peer's ring */
	uint32_t L, PL, SB;
	struct curs prep, sent, fin, txprod, txcons, rxprod, rxcons, confirmed;
	uint8_t tx_pflags, tx_cflags, rx_pflags, rx_cflags;
	long sndbuf_space, peer_rmbe_space, bytes_to_rcv, limit;
	enum sk_state st;
	const char *sk_err;
	int sk_shutdown, dead, freed, killed;
	enum handle_status hs;
	const char *violation;	/* the check that refused a CDC */
	struct tcp tcp;
	int queued;
	int stepped;		/* conn-steps: internal steps only through conn_step (5a) */
	int signalled;		/* stepped: a CDC waits in the header for the tasklet step */
	int data_cdc_due, upd_cdc_due;
	/* urgent data (5c): sender, then receiver */
	int urg;		/* opened with conn_open_urg */
	int urg_tx_pend;	/* an urgent byte is staged: sends wait until all is consumed */
	int oobinline;		/* SO_OOBINLINE (SOCK_URGINLINE) */
	enum urg_state urg_state;
	struct curs urg_curs;	/* own ring: just after the urgent byte */
	uint8_t urg_rx_byte;
	int urg_rx_skip_pend;
};

static struct conn **conns;	/* by handle */
static int nconns;

/* CDC signals raised inside a socket call are processed when it ends (section 5b) */
static int bh_depth;
static struct conn **pending;
static int npending;

static void conn_free(struct conn *c);
static void conn_kill(struct conn *c);
static void rx_tasklet(struct conn *c);

static void run_pending(void)
{
	while (npending) {
		struct conn *c = pending[0];

		memmove(pending, pending + 1, (npending - 1) * sizeof(*pending));
		npending--;
		c->queued = 0;
		rx_tasklet(c);
	}
}

static void bh_enter(void) { bh_depth++; }

static void bh_leave(void)
{
	if (--bh_depth == 0)
		run_pending();
}

/* signal whoever is set for the slot of `token`; 0 when nobody takes it (-EPIPE) */
static int signal_token(struct device *d, uint64_t token)
{
	struct node *n = dev_lookup(d, token);
	struct conn *c;

	if (!n)
		return 0;
	c = d->conn[n->slot];
	if (!c || c->killed)
		return 0;
	if (c->stepped) { /* processed only at its tasklet step */
		c->signalled = 1;
		return 1;
	}
	if (!c->queued) {
		c->queued = 1;
		pending = realloc(pending, (npending + 1) * sizeof(*pending));
		pending[npending++] = c;
	}
	if (bh_depth == 0)
		run_pending();
	return 1;
}

static void tcp_fin(struct tcp *t)
{
	if (t->fin_sent || t->reset || (t->fin_sent && t->fin_rcvd))
		return;
	t->fin_sent = 1;
	if (t->peer)
		t->peer->fin_rcvd = 1;
}

static int tcp_closed(const struct tcp *t) { return t->reset || (t->fin_sent && t->fin_rcvd); }

static void tcp_abort(struct tcp *t)
{
	if (tcp_closed(t))
		return;
	t->reset = 1;
	if (t->peer)
		t->peer->reset = 1;
}

/* smcd_cdc_msg_send: 0 on success */
static int cdc_msg_send(struct conn *c)
{
	struct node *n;
	uint8_t *h;

	n = dev_lookup(c->dev, c->peer_token);
	if (!n) {
		c->tx_cflags |= F_ABORT;
		return -1;
	}
	h = n->mem;
	memset(h, 0, CDC_LEN);
	h[0] = 0xfe;
	memcpy(h + 8, &c->txprod.wrap, 2);
	memcpy(h + 10, &c->txprod.count, 4);
	memcpy(h + 16, &c->txcons.wrap, 2);
	memcpy(h + 18, &c->txcons.count, 4);
	h[22] = c->tx_pflags;
	h[23] = c->tx_cflags;
	if (!signal_token(c->dev, c->peer_token)) {
		c->tx_cflags |= F_ABORT;
		return -1;
	}
	c->confirmed = c->txcons;
	c->rx_pflags &= (uint8_t)~P_UPD_REQ;
	if (!c->merged) {
		c->sndbuf_space += c_diff(c->SB, c->fin, c->sent);
		c->fin = c->sent;
	}
	return 0;
}

/* smc_cdc_get_slot_and_msg_send: only while registered in the link group */
static int cdc_send(struct conn *c)
{
	if (!c->registered)
		return -1;
	return cdc_msg_send(c);
}

/* smc_tx_rdma_writes: move what is prepared into the peer's ring; 1 moved, 0 nothing, -1 */
static int rdma_writes(struct conn *c)
{
	int to_send = c_diff(c->SB, c->sent, c->prep);
	long n;

	if (to_send <= 0 || c->peer_rmbe_space <= 0)
		return 0;
	if (to_send >= c->peer_rmbe_space)
		c->tx_pflags |= P_BLOCKED;
	else
		c->tx_pflags &= (uint8_t)~P_BLOCKED;
	n = to_send < c->peer_rmbe_space ? to_send : c->peer_rmbe_space;
	if (!c->merged) {
		struct node *pn = dev_lookup(c->dev, c->peer_token);

		if (!pn) {
			c->tx_cflags |= F_ABORT;
			return -1;
		}
		for (long i = 0; i < n; i++)
			pn->mem[CDC_LEN + (c->txprod.count + i) % c->PL] =
				c->sndbuf[(c->sent.count + i) % c->SB];
	}
	/* the move takes everything prepared: the last byte before the new prod is urgent */
	if (c->urg_tx_pend && n == to_send)
		c->tx_pflags |= P_URG_PRESENT;
	c->txprod = c_add(c->PL, c->txprod, (int)n);
	c->sent = c_add(c->SB, c->sent, (int)n);
	c->peer_rmbe_space -= n;
	return 1;
}

/* smc_tx_sndbuf_nonempty: move what is prepared, then a CDC; 0 or -1. smcd_tx_sndbuf_nonempty
 * skips the move while urg_data_present is set, and clears both urgent flags after the CDC
 * that carried urg_data_present (5c). */
static int push(struct conn *c)
{
	int rc = 0;

	if (c->stepped)
		return 0; /* corked: moves and CDCs only through conn_step */
	if (c_diff(c->SB, c->sent, c->prep) <= 0 || c->peer_rmbe_space <= 0)
		return 0;
	if (c->killed || (c->rx_cflags & F_ABORT))
		return -1;
	if (!(c->tx_pflags & P_URG_PRESENT))
		rc = rdma_writes(c);
	if (rc < 0)
		return rc;
	rc = cdc_send(c);
	if (rc == 0 && (c->tx_pflags & P_URG_PRESENT))
		c->tx_pflags &= (uint8_t)~(P_URG_PENDING | P_URG_PRESENT);
	return rc;
}

static void tx_pending(struct conn *c)
{
	if (c->sk_err)
		return;
	if (push(c) == 0 && (c->rx_pflags & P_BLOCKED) && !c->bytes_to_rcv)
		c->rx_pflags &= (uint8_t)~P_BLOCKED;
}

/* ---------------------------------------------------------------- the close machine */

static const int free_at_kill[] = {S_PEERCLOSEWAIT1, S_PEERCLOSEWAIT2, S_PEERFINCLOSEWAIT,
				   S_PROCESSABORT, S_APPFINCLOSEWAIT};

static void unset(struct conn *c)
{
	c->signalled = 0;
	if (c->rmb && c->rmb->node && c->dev->conn[c->rmb->slot] == c)
		c->dev->conn[c->rmb->slot] = NULL;
	for (int i = 0; i < npending; i++)
		if (pending[i] == c) {
			memmove(pending + i, pending + i + 1, (npending - i - 1) * sizeof(*pending));
			npending--;
			c->queued = 0;
			break;
		}
}

static void detach(struct conn *c)
{
	if (c->ghost) {
		dev_put(c->dev, c->ghost);
		c->ghost = NULL;
	}
}

static void conn_free(struct conn *c)
{
	if (c->freed)
		return;
	c->freed = 1;
	unset(c);
	if (c->merged)
		detach(c);
	if (c->registered) {
		if (c->lgr->listed) {
			if (c->rmb->node)
				memset(c->rmb->node->mem, 0, c->rmb->node->len);
			c->rmb->used = 0;
			if (!c->merged && c->sndbuf)
				memset(c->sndbuf, 0, c->SB);
			lgr_unregister(c->lgr, c);
			c->registered = 0;
		}
		if (!c->lgr->nconns && c->lgr->listed)
			c->lgr->free_scheduled = 1;
	}
	if (c->holds_lgr) {
		c->holds_lgr = 0;
		lgr_put(c->lgr);
	}
}

static void conn_kill(struct conn *c)
{
	enum sk_state was;

	if (c->freed || c->killed)
		return;
	c->tx_cflags |= F_ABORT;
	cdc_send(c);
	c->killed = 1;
	tcp_abort(&c->tcp);
	c->sk_err = "ECONNABORTED";
	unset(c);
	if (c->merged)
		detach(c);
	if (c->registered) {
		lgr_unregister(c->lgr, c);
		c->registered = 0;
	}
	was = c->st;
	c->st = S_CLOSED;
	c->dead = 1;
	for (size_t i = 0; i < sizeof(free_at_kill) / sizeof(*free_at_kill); i++)
		if ((int)was == free_at_kill[i])
			conn_free(c);
}

/* a received CDC's connection-state flags: smc_cdc_msg_recv_action's tail + the passive close */
static void on_flags(struct conn *c, uint8_t flags)
{
	enum sk_state old = c->st, st = c->st;
	uint8_t tx;

	if (flags & F_ABORT) {
		c->sk_err = "ECONNRESET";
		c->tx_cflags |= F_ABORT;
	}
	if (!(flags & F_ANY))
		return;
	c->sk_shutdown |= RCV_SHUTDOWN;
	tx = c->tx_cflags;
	if (flags & F_ABORT) { /* smc_close_passive_abort_received */
		if (old == S_ACTIVE || old == S_APPCLOSEWAIT1 || old == S_APPFINCLOSEWAIT)
			st = S_PROCESSABORT;
		else if (old == S_PEERCLOSEWAIT1 || old == S_PEERCLOSEWAIT2)
			st = ((tx & F_DONE) && !(tx & F_ANY_CLOSE)) ? S_PROCESSABORT : S_CLOSED;
		else if (old == S_APPCLOSEWAIT2 || old == S_PEERFINCLOSEWAIT ||
			 old == S_PEERABORTWAIT)
			st = S_CLOSED;
	} else if (old == S_ACTIVE) {
		st = S_APPCLOSEWAIT1;
	} else if (old == S_PEERCLOSEWAIT1 || old == S_PEERCLOSEWAIT2) {
		if (old == S_PEERCLOSEWAIT1 && (flags & F_DONE))
			st = S_PEERCLOSEWAIT2;
		if (flags & F_ANY_CLOSE)
			st = (c->dead && (tx & F_ANY_CLOSE)) ? S_CLOSED : S_APPFINCLOSEWAIT;
	} else if (old == S_PEERFINCLOSEWAIT && (flags & F_ANY_CLOSE)) {
		st = S_CLOSED;
	}
	c->st = st;
	if (st != old && st == S_CLOSED && c->dead) {
		conn_free(c);
		tcp_fin(&c->tcp);
	}
}

/* ---------------------------------------------------------------- receiving (5b, 10) */

static long long dist(uint32_t size, struct curs o, struct curs n)
{
	long long span = 65536LL * size;
	long long d = ((long long)n.wrap * size + n.count) - ((long long)o.wrap * size + o.count);

	return ((d % span) + span) % span;
}

static const char *check_cdc(struct conn *c, const uint8_t *h, struct curs prod, struct curs cons)
{
	long long span = 65536LL * c->L, pspan = 65536LL * c->PL, nd, cd;

#ifdef NO_CDC_CHECKS /* a mutant for the tests: 6.12.118 acts on every CDC unchecked */
	return NULL;
#endif
	if (h[0] != 0xfe)
		return "type";
	if ((h[23] & 0x1f) || (h[22] & 0x0f))
		return "flags-reserved";
	if (prod.count >= c->L)
		return "prod-count";
	if (cons.count >= c->PL)
		return "cons-count";
	if (c->urg) /* see below */
		goto sticky;
	nd = dist(c->L, c->rxprod, prod);
	if (nd && nd >= span - c->L)
		return "prod-backwards";
	if (nd > (long long)c->L - c->bytes_to_rcv)
		return "prod-overrun";
	cd = dist(c->PL, c->rxcons, cons);
	if (cd && cd >= pspan - c->PL)
		return "cons-backwards";
	if (cd > (long long)c->PL - c->peer_rmbe_space)
		return "cons-overrun";
	/* A conn_open_urg pair (5c) skips the cursor-distance checks: there 6.12.118's own data
	 * path breaks what they assume, and the cases pin it. After the phantom skip
	 * (datapath.merged.urgent.phantom-skip) the reader's consumer cursor reaches the producer
	 * cursor with bytes_to_rcv still 1, so the peer's next full-window write is a correct
	 * CDC that prod-overrun would refuse; a skip with nothing left to read, or SO_OOBINLINE
	 * switched after an urgent byte arrived, puts cons past prod, and the reader's next
	 * window update is one cons-overrun would refuse. */
sticky:
	if (c->rx_cflags & ~h[23] & F_ANY)
		return "flags-cleared";
	return NULL;
}

static void rx_tasklet(struct conn *c)
{
	const uint8_t *h;
	struct curs prod, cons, oprod, ocons;
	const char *why;
	int dc, dp;

	if (c->killed || !c->rmb || !c->rmb->node)
		return;
	h = c->rmb->node->mem;
	memcpy(&prod.wrap, h + 8, 2);
	memcpy(&prod.count, h + 10, 4);
	memcpy(&cons.wrap, h + 16, 2);
	memcpy(&cons.count, h + 18, 4);
	why = check_cdc(c, h, prod, cons);
	if (why) { /* refused: abort the connection */
		c->violation = why;
		conn_kill(c);
		c->sk_err = "EPROTO";
		return;
	}
	oprod = c->rxprod;
	ocons = c->rxcons;
	c->rxprod = prod;
	c->rxcons = cons;
	c->rx_pflags = h[22];
	c->rx_cflags = h[23];
	dc = c_diff(c->PL, ocons, cons);
	if (dc) {
		c->peer_rmbe_space += dc;
		if (c->merged) {
			c->sndbuf_space += c_diff(c->SB, c->fin, cons);
			c->fin = cons;
		}
	}
	dp = c_diff(c->L, oprod, prod);
	if (dp) {
		if (c->rx_pflags & P_URG_PRESENT) { /* smc_cdc_handle_urg_data_arrival */
			c->urg_curs = prod;
			c->urg_state = U_VALID;
			if (!c->oobinline)
				dp--; /* skipped, not counted */
			c->urg_rx_byte = c->rmb->node->mem[CDC_LEN + (prod.count ? prod.count - 1 :
								     c->L - 1)];
		}
		c->bytes_to_rcv += dp;
	} else if (c->rx_pflags & P_URG_PENDING) {
		c->urg_state = U_NOTYET;
	}
	if ((dc && c_diff(c->SB, c->sent, c->prep) > 0) || (c->rx_pflags & P_UPD_REQ) ||
	    (c->rx_pflags & P_URG_PENDING))
		tx_pending(c);
	/* the peer consumed everything, the urgent byte included: sends may go on */
	if (dc && c->urg_tx_pend && c->peer_rmbe_space == (long)c->PL)
		c->urg_tx_pend = 0;
	on_flags(c, c->rx_cflags);
}

/* ---------------------------------------------------------------- opening a pair (5, 9) */

static struct device devs[2];	/* the connection devices: copy, merged */
static struct device step_devs[2];	/* stepped pairs' devices (5a) */

static int smcd_size(long long size)
{
	for (int k = 0; k <= 6; k++)
		if (size == 16384LL << k)
			return 1;
	return 0;
}

/* __smc_buf_create: an unused DMB of the size from the link group (newest first), else new */
static struct desc *buf_create(struct lgr *l, uint32_t size)
{
	struct desc *ds;
	struct node *n;

	for (int i = 0; i < l->nrmbs; i++)
		if (!l->rmbs[i]->used && l->rmbs[i]->size == size && l->rmbs[i]->node) {
			l->rmbs[i]->used = 1;
			return l->rmbs[i];
		}
	n = dev_register(l->dev, size);
	if (!n)
		return NULL;
	ds = calloc(1, sizeof(*ds));
	ds->token = n->token;
	ds->slot = n->slot;
	ds->size = size;
	ds->used = 1;
	ds->node = n;
	l->rmbs = realloc(l->rmbs, (l->nrmbs + 1) * sizeof(*l->rmbs));
	memmove(l->rmbs + 1, l->rmbs, l->nrmbs * sizeof(*l->rmbs));
	l->rmbs[0] = ds;
	l->nrmbs++;
	return ds;
}

static struct conn *conn_new(struct device *d, int merged, struct lgr *l, int first,
			     uint32_t dmb_size, uint32_t sndbuf_size)
{
	struct conn *c = calloc(1, sizeof(*c));

	c->dev = d;
	c->merged = merged;
	c->lgr = l;
	c->first_contact = first;
	c->rmb = buf_create(l, dmb_size);
	if (!c->rmb) {
		free(c);
		return NULL;
	}
	d->conn[c->rmb->slot] = c;
	lgr_register(l, c);
	c->registered = 1;
	l->refcnt++;
	c->holds_lgr = 1;
	c->L = dmb_size - CDC_LEN;
	c->limit = c->L / 10 > 2304 ? c->L / 10 : 2304;
	c->urg_state = U_READ; /* smc_rx_init */
	if (!merged) {
		c->SB = sndbuf_size;
		c->sndbuf = calloc(1, sndbuf_size);
	}
	return c;
}

static void peer_info(struct conn *c, struct conn *p)
{
	c->peer = p;
	c->peer_token = p->rmb->token;
	c->PL = p->L;
	c->peer_rmbe_space = c->PL;
	if (c->merged) { /* smcd_buf_attach: the ghost sndbuf is the peer's ring */
		c->ghost = p->rmb->node;
		c->ghost->refcnt++;
		c->sndbuf = c->ghost->mem + CDC_LEN;
		c->SB = c->PL;
	}
	c->sndbuf_space = c->SB;
}

static void add_conn(struct conn *c)
{
	conns = realloc(conns, (nconns + 1) * sizeof(*conns));
	conns[nconns] = c;
	c->handle = nconns++;
}

/* the `start` hook of conn_open_urg (5c): every cursor where `start` bytes each way, all read
 * and confirmed, would have left it; urg_curs stays (0, 0) */
static struct curs at_start(long long start, uint32_t size)
{
	struct curs k;

	k.wrap = (uint16_t)((start / size) & 0xffff);
	k.count = (uint32_t)(start % size);
	return k;
}

static void start_after(struct conn *c, long long start)
{
	c->txprod = c->rxcons = at_start(start, c->PL);
	c->prep = c->sent = c->fin = at_start(start, c->SB);
	c->rxprod = c->txcons = c->confirmed = at_start(start, c->L);
}

enum open_kind { OPEN_PLAIN, OPEN_STEPS, OPEN_URG };

static void op_open(struct jval *args, enum open_kind kind)
{
	const char *mode = arg_str(args, "mode");
	int stepped = kind == OPEN_STEPS;
	long long dmb, snd = 0, start = 0;
	struct device *d;
	struct lgr *lb, *la;
	struct conn *a, *b;
	int merged, bfirst = 0;

	if (!mode || (strcmp(mode, "copy") && strcmp(mode, "merged"))) {
		fail("EINVAL", "mode: expected copy or merged");
		return;
	}
	merged = !strcmp(mode, "merged");
	if (!arg_int(args, "dmb_size", 0, 1LL << 40, &dmb) || !smcd_size(dmb) ||
	    (!merged && (!arg_int(args, "sndbuf_size", 0, 1LL << 40, &snd) || !smcd_size(snd)))) {
		fail("EINVAL", "dmb_size / sndbuf_size: not an SMC-D buffer size (16 KiB << 0..6)");
		return;
	}
	if (kind == OPEN_URG && !arg_int(args, "start", 0, 1LL << 62, &start)) {
		struct jval *v = jget(args, "start");

		fail("EINVAL", v && v->t == J_NUM && v->neg && !v->frac ?
		     "start: negative (expected an int >= 0)" : "start: expected an int >= 0");
		return;
	}
	d = stepped ? &step_devs[merged] : &devs[merged];
	if (d->removed) {
		fail("ENODEV", "the connection device was removed");
		return;
	}
	/* the server's smc_conn_create and DMB first, then the client's */
	lb = lgr_find(d);
	if (!lb) {
		lb = lgr_new(d);
		bfirst = 1;
	}
	b = conn_new(d, merged, lb, bfirst, (uint32_t)dmb, (uint32_t)snd);
	la = bfirst ? lgr_new(d) : lgr_find(d); /* told "first contact": a new one */
	a = b ? conn_new(d, merged, la, bfirst, (uint32_t)dmb, (uint32_t)snd) : NULL;
	if (!a || !b) {
		fail("ENOSPC", "no free DMB slot");
		return;
	}
	a->stepped = b->stepped = stepped;
	peer_info(a, b); /* the client after the Accept */
	peer_info(b, a); /* the server after the Confirm */
	if (kind == OPEN_URG) {
		a->urg = b->urg = 1;
		start_after(a, start);
		start_after(b, start);
	}
	a->tcp.peer = &b->tcp;
	b->tcp.peer = &a->tcp;
	add_conn(a);
	add_conn(b);
	ok_begin();
	out("\"a\":%d,\"b\":%d", a->handle, b->handle);
	ok_end();
}

/* ---------------------------------------------------------------- socket calls (5, 5b) */

static struct conn *find_conn(struct jval *args)
{
	long long h;

	if (!arg_int(args, "conn", 0, 1LL << 40, &h)) {
		fail("EBADF", "conn: expected a connection handle (an int the target returned)");
		return NULL;
	}
	if (h >= nconns) {
		fail("EBADF", "conn: unknown connection");
		return NULL;
	}
	return conns[h];
}

/* the handle errnos (section 5): 1 when answered */
static int handle_error(struct conn *c, int usable)
{
	if (c->hs == H_CLOSED) {
		fail("EBADF", "the endpoint was closed");
		return 1;
	}
	if (c->hs == H_ABORTED) {
		fail("ECONNABORTED", "the endpoint was aborted");
		return 1;
	}
	if (usable && c->violation) {
		fail("EPROTO", "the connection was aborted: the peer's CDC failed a check");
		return 1;
	}
	return 0;
}

/* conn_send, and conn_send_oob (oob: smc_tx_sendmsg with MSG_OOB, 5c) */
static void op_send(struct conn *c, struct jval *args, int oob)
{
	uint8_t *data;
	size_t len, done = 0;

	if (handle_error(c, 1))
		return;
	if (!arg_str(args, "data") || !unhex(arg_str(args, "data"), &data, &len)) {
		fail("EINVAL", "data: expected a hex string");
		return;
	}
	if (c->sk_err || (c->sk_shutdown & SEND_SHUTDOWN) || c->killed) {
		free(data);
		fail("EPIPE", "shut down, aborted or killed");
		return;
	}
	if (c->rx_cflags & F_ANY_CLOSE) {
		free(data);
		fail("ECONNRESET", "the peer closed");
		return;
	}
	bh_enter();
	while (done < len) {
		size_t n;

		if (oob) /* every pass, before the wait: even a send that takes nothing sets it */
			c->tx_pflags |= P_URG_PENDING;
		if (c->sndbuf_space <= 0 || c->urg_tx_pend)
			break; /* smc_tx_wait, non-blocking */
		n = len - done < (size_t)c->sndbuf_space ? len - done : (size_t)c->sndbuf_space;
		for (size_t i = 0; i < n; i++)
			c->sndbuf[(c->prep.count + i) % c->SB] = data[done + i];
		c->prep = c_add(c->SB, c->prep, (int)n);
		c->sndbuf_space -= (long)n;
		done += n;
		if (oob && done == len)
			c->urg_tx_pend = 1; /* the message's last byte is urgent */
		push(c);
	}
	bh_leave();
	free(data);
	ok_begin();
	out("\"n\":%zu", done);
	ok_end();
}

/* smc_tx_consumer_update; force: the urgent byte was skipped or read in band */
static void consumer_update(struct conn *c, int force)
{
	int to_confirm = c_diff(c->L, c->confirmed, c->txcons);
	long sender_free = c->L;

	if (to_confirm > c->limit)
		sender_free = (long)c->L - c_diff_large(c->L, c->confirmed, c->rxprod);
	if ((c->rx_pflags & P_UPD_REQ) || force ||
	    (to_confirm > c->limit &&
	     (sender_free <= (long)(c->L / 2) || (c->rx_pflags & P_BLOCKED)))) {
		if (c->killed || (c->rx_cflags & F_ABORT))
			return;
		if (c->stepped)
			c->upd_cdc_due = 1; /* decided; written by the cdc step */
		else if (cdc_send(c) < 0)
			return;
	}
	if ((c->rx_pflags & P_BLOCKED) && !c->bytes_to_rcv)
		c->rx_pflags &= (uint8_t)~P_BLOCKED;
}

/* smc_rx_update_consumer: our consumer cursor passes n bytes read, and the urgent byte's
 * rules (5c): without SO_OOBINLINE a cursor right before it skips it, with SO_OOBINLINE one
 * at it marks it read; smc_curs_comp compares the raw wrap, as the kernel does */
static void update_consumer(struct conn *c, long n)
{
	struct curs cons = c_add(c->L, c->txcons, (int)n);
	int force = 0;

	if (c->urg_state == U_VALID || c->urg_rx_skip_pend) {
		int diff = c_comp(c->L, cons, c->urg_curs);

		if (c->oobinline) {
			if (diff == 0) {
				force = 1;
				c->urg_state = U_READ;
			}
		} else if (diff == 1) { /* skip the urgent byte */
			force = 1;
			cons = c_add(c->L, cons, 1);
			c->urg_rx_skip_pend = 0;
		} else if (diff < -1) { /* read past it */
			c->urg_state = U_READ;
		}
	}
	c->txcons = cons;
	consumer_update(c, force);
}

static void op_recv(struct conn *c, struct jval *args)
{
	long long max;
	long n = 0, readable;
	uint8_t *buf;

	if (handle_error(c, 1))
		return;
	if (!arg_int(args, "max", 0, 1LL << 40, &max)) {
		fail("EINVAL", "max: expected an int >= 0");
		return;
	}
	if (c->st == S_CLOSED) { /* smc_recvmsg */
		if (c->sk_shutdown & RCV_SHUTDOWN) {
			ok_begin();
			out("\"data\":\"\",\"eof\":true");
			ok_end();
		} else {
			fail("ENOTCONN", "the socket is SMC_CLOSED");
		}
		return;
	}
	readable = c->bytes_to_rcv;
	if (c->urg_state == U_VALID && c->oobinline && readable > 1)
		readable--; /* "always stop at urgent Byte" */
	if (readable > 0)
		n = max < readable ? (long)max : readable;
	buf = malloc(n + 1);
	bh_enter();
	if (n > 0) {
		for (long i = 0; i < n; i++)
			buf[i] = c->rmb->node->mem[CDC_LEN + (c->txcons.count + i) % c->L];
		c->bytes_to_rcv -= n;
		update_consumer(c, n);
	} else if (max > 0 && !c->bytes_to_rcv && c->urg_state == U_VALID) {
		/* smc_rx_recvmsg_data_available: "we received a single urgent Byte - skip" */
		update_consumer(c, 0);
	}
	bh_leave();
	ok_begin();
	out("\"data\":\"");
	out_hex(buf, (size_t)n);
	out("\",\"eof\":%s", !c->bytes_to_rcv && ((c->sk_shutdown & RCV_SHUTDOWN) || c->killed ||
					      c->freed) ? "true" : "false");
	ok_end();
	free(buf);
}

/* conn_recv_oob: smc_rx_recv_urg. EINVAL with SO_OOBINLINE or no valid urgent byte (never
 * EAGAIN); max 0 is MSG_TRUNC: marked read, nothing returned, no cursor touched */
static void op_recv_oob(struct conn *c, struct jval *args)
{
	long long max;

	if (handle_error(c, 1))
		return;
	if (!arg_int(args, "max", 0, 1LL << 40, &max)) {
		fail("EINVAL", "max: expected an int >= 0");
		return;
	}
	if (c->st == S_CLOSED) { /* smc_recvmsg looks at the state first */
		if (c->sk_shutdown & RCV_SHUTDOWN) {
			ok_begin();
			out("\"data\":\"\"");
			ok_end();
		} else {
			fail("ENOTCONN", "the socket is SMC_CLOSED");
		}
		return;
	}
	if (c->oobinline) {
		fail("EINVAL", "smc_rx_recv_urg: SO_OOBINLINE is set, urgent data stays in band");
		return;
	}
	if (c->urg_state != U_VALID) {
		fail("EINVAL", c->urg_state == U_NOTYET ?
		     "smc_rx_recv_urg: urg_state NOTYET (announced, not arrived)" :
		     "smc_rx_recv_urg: urg_state READ (no unread urgent byte)");
		return;
	}
	c->urg_state = U_READ;
	ok_begin();
	if (max > 0) {
		if (c_diff(c->L, c->txcons, c->urg_curs) > 1)
			c->urg_rx_skip_pend = 1;
		bh_enter();
		update_consumer(c, 0); /* "trigger skipping the urgent byte in non-inline case" */
		bh_leave();
		out("\"data\":\"");
		out_hex(&c->urg_rx_byte, 1);
		out("\"");
	} else {
		out("\"data\":\"\"");
	}
	ok_end();
}

/* conn_atmark: ioctl SIOCATMARK (smc_ioctl): diff(cons, urg_curs) == 1 whatever urg_state
 * says, so also with no urgent byte ever sent; false in SMC_CLOSED */
static void op_atmark(struct conn *c)
{
	if (handle_error(c, 0))
		return;
	ok_begin();
	out("\"atmark\":%s", c->st != S_CLOSED && c_diff(c->L, c->txcons, c->urg_curs) == 1 ?
	    "true" : "false");
	ok_end();
}

/* conn_set_oobinline: setsockopt SO_OOBINLINE (SOCK_URGINLINE of this end) */
static void op_set_oobinline(struct conn *c, struct jval *args)
{
	struct jval *on = jget(args, "on");

	if (handle_error(c, 0))
		return;
	if (!on || on->t != J_BOOL) {
		fail("EINVAL", "on: expected a boolean");
		return;
	}
	c->oobinline = on->b;
	ok_empty();
}

static void op_shutdown(struct conn *c)
{
	if (handle_error(c, 1))
		return;
	if (c->st != S_ACTIVE && c->st != S_PEERCLOSEWAIT1 && c->st != S_PEERCLOSEWAIT2 &&
	    c->st != S_APPCLOSEWAIT1 && c->st != S_APPCLOSEWAIT2 && c->st != S_APPFINCLOSEWAIT) {
		fail("ENOTCONN", "smc_shutdown: not in a state that allows it");
		return;
	}
	if (c->sk_shutdown & SEND_SHUTDOWN) {
		if (tcp_closed(&c->tcp))
			fail("ENOTCONN", "the TCP connection is closed both ways");
		else
			ok_empty();
		return;
	}
	bh_enter();
	tx_pending(c);
	c->tx_cflags |= F_DONE;
	cdc_send(c);
	c->sk_shutdown |= SEND_SHUTDOWN;
	if (c->st == S_ACTIVE)
		c->st = S_PEERCLOSEWAIT1;
	else if (c->st == S_APPCLOSEWAIT1)
		c->st = S_APPCLOSEWAIT2;
	bh_leave();
	if (tcp_closed(&c->tcp)) {
		fail("ENOTCONN", "the TCP connection is closed both ways");
		return;
	}
	tcp_fin(&c->tcp);
	ok_empty();
}

/* smc_close_final: abort with unread data, else closed; nothing when killed */
static void close_final(struct conn *c)
{
	if (c->killed || c->violation)
		return;
	c->tx_cflags |= c->bytes_to_rcv ? F_ABORT : F_CLOSED;
	cdc_send(c);
}

static void op_close(struct conn *c)
{
	enum sk_state was;
	uint8_t tx;
	int just_shut;

	if (handle_error(c, 0))
		return;
	bh_enter();
	was = c->st;
	tx = c->tx_cflags;
	just_shut = (tx & F_DONE) && !(tx & F_ANY_CLOSE);
	switch (was) {
	case S_ACTIVE:
		tx_pending(c);
		close_final(c);
		c->st = S_PEERCLOSEWAIT1;
		break;
	case S_APPFINCLOSEWAIT:
		if (just_shut)
			close_final(c);
		c->st = S_CLOSED;
		break;
	case S_APPCLOSEWAIT1:
	case S_APPCLOSEWAIT2:
		tx_pending(c);
		close_final(c);
		c->st = (c->rx_cflags & F_ANY_CLOSE) ? S_CLOSED : S_PEERFINCLOSEWAIT;
		break;
	case S_PEERCLOSEWAIT1:
	case S_PEERCLOSEWAIT2:
		if (just_shut)
			close_final(c);
		break;
	case S_PROCESSABORT:
		c->tx_cflags |= F_ABORT;
		cdc_send(c);
		c->st = S_CLOSED;
		break;
	case S_PEERABORTWAIT:
		c->st = S_CLOSED;
		break;
	default:
		break;
	}
	c->hs = H_CLOSED;
	c->dead = 1;
	c->sk_shutdown |= SEND_SHUTDOWN | RCV_SHUTDOWN;
	if (c->st == S_CLOSED)
		conn_free(c);
	if (was == S_ACTIVE || c->st == S_CLOSED)
		tcp_fin(&c->tcp);
	bh_leave();
	ok_empty();
}

static void op_abort(struct conn *c)
{
	if (handle_error(c, 0))
		return;
	bh_enter();
	c->hs = H_ABORTED;
	conn_kill(c);
	conn_free(c);
	bh_leave();
	ok_empty();
}

static void flag_names(uint8_t f)
{
	const char *sep = "";

	out("[");
	if (f & F_DONE) {
		out("\"peer_done_writing\"");
		sep = ",";
	}
	if (f & F_CLOSED) {
		out("%s\"peer_conn_closed\"", sep);
		sep = ",";
	}
	if (f & F_ABORT)
		out("%s\"peer_conn_abort\"", sep);
	out("]");
}

static void op_cursors(struct conn *c)
{
	int closed = c->st == S_CLOSED;
	uint32_t sb_open = c->merged ? c->PL : c->SB;

	ok_begin();
	out("\"prod\":[%u,%u],\"peer_cons\":[%u,%u],\"sndbuf_space\":%ld,"
	    "\"peer_rmbe_space\":%ld,\"cons\":[%u,%u],\"peer_prod\":[%u,%u],\"bytes_to_rcv\":%ld",
	    c->txprod.wrap, c->txprod.count, c->rxcons.wrap, c->rxcons.count,
	    closed ? (long)sb_open : c->sndbuf_space, c->peer_rmbe_space, c->txcons.wrap,
	    c->txcons.count, c->rxprod.wrap, c->rxprod.count, closed ? 0L : c->bytes_to_rcv);
	ok_end();
}

static void op_state(struct conn *c)
{
	ok_begin();
	out("\"sk_state\":\"%s\",\"sk_err\":\"%s\",\"sk_shutdown\":%d,\"dead\":%s,\"freed\":%s,"
	    "\"tx_flags\":", state_name[c->st], c->sk_err ? c->sk_err : "", c->sk_shutdown,
	    c->dead ? "true" : "false", c->freed ? "true" : "false");
	flag_names(c->tx_cflags);
	out(",\"rx_flags\":");
	flag_names(c->rx_cflags);
	ok_end();
}

static void op_inject(struct conn *c, struct jval *args)
{
	uint8_t *data;
	size_t len;

	if (!arg_str(args, "data") || !unhex(arg_str(args, "data"), &data, &len) || len != 32) {
		if (arg_str(args, "data") && unhex(arg_str(args, "data"), &data, &len))
			free(data);
		fail("EINVAL", "data: a CDC header is 32 bytes (hex)");
		return;
	}
	if (c->freed || !c->rmb->node) {
		free(data);
		fail("EPIPE", "the endpoint's connection was freed");
		return;
	}
	memcpy(c->rmb->node->mem, data, 32);
	free(data);
	if (!signal_token(c->dev, c->rmb->token)) {
		fail("EPIPE", "the endpoint's connection takes no signal (killed)");
		return;
	}
	ok_begin();
	if (c->violation && c->killed)
		out("\"accepted\":false,\"check\":\"%s\"", c->violation);
	else
		out("\"accepted\":true,\"check\":null");
	ok_end();
}

/* ---------------------------------------------------------------- link-group calls (9) */

static void terminate(struct lgr *l)
{
	int n = l->nconns;
	struct conn **killed;

	if (l->terminating)
		return;
	l->free_scheduled = 0;
	l->terminating = 1;
	killed = malloc((n + 1) * sizeof(*killed));
	memcpy(killed, l->conns, n * sizeof(*killed));
	for (int i = 0; i < n; i++)
		conn_kill(killed[i]);
	free(killed);
	lgr_put(l); /* smc_lgr_free: its own reference */
}

static void op_lgr(const char *op, struct jval *args)
{
	if (!strcmp(op, "lgr_of") || !strcmp(op, "lgr_dmb")) {
		struct conn *c = find_conn(args);
		struct node *n;

		if (!c)
			return;
		ok_begin();
		if (!strcmp(op, "lgr_of")) {
			const char *st = c->lgr->gone ? "gone" : c->lgr->listed ? "listed" : "freeing";

			out("\"lgr\":%d,\"first_contact\":%s,\"state\":\"%s\",\"conns_num\":%d",
			    c->lgr->handle, c->first_contact ? "true" : "false", st,
			    c->lgr->gone ? 0 : c->lgr->nconns);
		} else {
			n = dev_lookup(c->dev, c->rmb->token);
			out("\"token\":%llu,\"sba_idx\":%d,\"len\":%u,\"refcnt\":%d,\"used\":%s",
			    (unsigned long long)c->rmb->token, c->rmb->slot, c->rmb->size,
			    n ? n->refcnt : 0, c->rmb->used ? "true" : "false");
		}
		ok_end();
		return;
	}
	if (!strcmp(op, "lgr_dev") || !strcmp(op, "lgr_dev_remove")) {
		const char *mode = arg_str(args, "mode");
		struct device *d;
		int listed = 0;

		if (!mode || (strcmp(mode, "copy") && strcmp(mode, "merged"))) {
			fail("EINVAL", "mode: expected copy or merged");
			return;
		}
		d = &devs[!strcmp(mode, "merged")];
		if (!strcmp(op, "lgr_dev")) {
			for (int i = 0; i < d->nlgrs; i++)
				listed += d->lgrs[i]->listed;
			ok_begin();
			out("\"dmb_cnt\":%d,\"lgr_cnt\":%d,\"listed\":%d", d->dmb_cnt, d->lgr_cnt,
			    listed);
			ok_end();
			return;
		}
		if (d->removed) {
			fail("ENODEV", "the device is gone");
			return;
		}
		d->removed = 1;
		{	/* smc_smcd_terminate_all: all off the list, then each terminated */
			int n = 0;
			struct lgr **ls = malloc((d->nlgrs + 1) * sizeof(*ls));

			for (int i = 0; i < d->nlgrs; i++)
				if (d->lgrs[i]->listed) {
					d->lgrs[i]->listed = 0;
					d->lgrs[i]->free_scheduled = 0;
					ls[n++] = d->lgrs[i];
				}
			for (int i = 0; i < n; i++)
				terminate(ls[i]);
			free(ls);
		}
		ok_empty();
		return;
	}
	{
		long long h;
		struct lgr *l;

		if (!arg_int(args, "lgr", 1, nall_lgrs, &h) || all_lgrs[h - 1]->gone) {
			fail("EINVAL", "unknown or freed link group");
			return;
		}
		l = all_lgrs[h - 1];
		if (!strcmp(op, "lgr_terminate")) {
			if (l->listed && !l->terminating) {
				l->listed = 0; /* smc_lgr_terminate_sched */
				l->free_scheduled = 0;
				terminate(l);
			}
			ok_empty();
		} else { /* lgr_free_work */
			if (!l->free_scheduled) {
				fail("EAGAIN", "no delayed free is queued");
				return;
			}
			l->free_scheduled = 0;
			if (l->listed && !l->nconns) {
				l->listed = 0;
				lgr_put(l);
			}
			ok_empty();
		}
	}
}

/* ---------------------------------------------------------------- stepped pairs (5a) */

static void op_step(struct conn *c, const char *step)
{
	int done = 0;

	if (!c->stepped) {
		fail("EINVAL", "conn_step: the pair was not opened with conn_open_steps");
		return;
	}
	if (!step || (strcmp(step, "move") && strcmp(step, "cdc") && strcmp(step, "tasklet"))) {
		fail("EINVAL", "step: expected move, cdc or tasklet");
		return;
	}
	if (!strcmp(step, "move")) {
		if (!c->data_cdc_due && !c->killed && !(c->rx_cflags & F_ABORT) &&
		    rdma_writes(c) > 0) {
			c->data_cdc_due = 1;
			done = 1;
		}
	} else if (!strcmp(step, "cdc")) {
		if (!c->killed && (c->data_cdc_due || c->upd_cdc_due)) {
			if (c->data_cdc_due)
				cdc_msg_send(c);
			else
				cdc_send(c);
			c->data_cdc_due = c->upd_cdc_due = 0;
			done = 1;
		}
	} else if (c->signalled) {
		c->signalled = 0;
		rx_tasklet(c);
		done = 1;
	}
	if (done)
		ok_empty();
	else
		fail("EAGAIN", "nothing to do now");
}

/* ---------------------------------------------------------------- the link-group lens (5a) */

struct lens_lgr {
	uint64_t gid, ext;
};

static struct device lens_dev;	/* unused memory-wise: link groups only */
static struct lens_lgr *lens;
static int nlens;

static void op_lgr_conn_create(struct jval *args)
{
	const char *role = arg_str(args, "role");
	struct jval *fcp = jget(args, "first_contact_peer");
	uint64_t gid, ext;
	int found = -1, client, first_peer;

	if (!role || (strcmp(role, "client") && strcmp(role, "server"))) {
		fail("EINVAL", "role: expected client or server");
		return;
	}
	if (!arg_u64(args, "peer_gid", &gid) || !arg_u64(args, "peer_gid_ext", &ext)) {
		fail("EINVAL", "peer_gid / peer_gid_ext: expected u64");
		return;
	}
	client = !strcmp(role, "client");
	first_peer = fcp && fcp->t == J_BOOL && fcp->b;
	if (!(client && first_peer)) /* smcd_lgr_match on a virtual device: gid and gid_ext */
		for (int i = 0; i < nlens && found < 0; i++)
			if (lens[i].gid == gid && lens[i].ext == ext)
				found = i;
	if (found < 0 && client && !first_peer) {
		fail("ENOENT", "no link group for this peer (SMC_CLC_DECL_SYNCERR)");
		return;
	}
	ok_begin();
	if (found < 0) {
		lens = realloc(lens, (nlens + 1) * sizeof(*lens));
		lens[nlens].gid = gid;
		lens[nlens].ext = ext;
		found = nlens++;
		out("\"lgr\":%d,\"first_contact\":true", found + 1);
	} else {
		out("\"lgr\":%d,\"first_contact\":false", found + 1);
	}
	ok_end();
}

/* ====================================================================== the session (section 1) */

static void reset_all(void)
{
	for (int i = 0; i < nconns; i++) {
		if (!conns[i]->merged)
			free(conns[i]->sndbuf);
		free(conns[i]);
	}
	free(conns);
	conns = NULL;
	nconns = 0;
	for (int i = 0; i < nall_lgrs; i++) {
		for (int j = 0; j < all_lgrs[i]->nrmbs; j++)
			free(all_lgrs[i]->rmbs[j]);
		free(all_lgrs[i]->rmbs);
		free(all_lgrs[i]->conns);
		free(all_lgrs[i]);
	}
	free(all_lgrs);
	all_lgrs = NULL;
	nall_lgrs = 0;
	free(pending);
	pending = NULL;
	npending = 0;
	bh_depth = 0;
	dev_free(&devops);
	dev_free(&devs[0]);
	dev_free(&devs[1]);
	dev_free(&step_devs[0]);
	dev_free(&step_devs[1]);
	dev_free(&lens_dev);
	devops.nocopy = 1;
	devops.seed = 1;
	devs[0].seed = 2;
	devs[1].nocopy = 1;
	devs[1].seed = 3;
	step_devs[0].seed = 4;
	step_devs[1].nocopy = 1;
	step_devs[1].seed = 5;
	free(lens);
	lens = NULL;
	nlens = 0;
}

static void dispatch(const char *op, struct jval *args)
{
	struct conn *c;

	if (!strcmp(op, "hello")) {
		ok_begin();
		out("\"name\":\"lo_target.c\",\"protocol\":4,\"capabilities\":[\"device\","
		    "\"device-nocopy\",\"cursor\",\"conn-copy\",\"conn-merged\",\"conn-state\","
		    "\"cdc-inject\",\"lgr-lifecycle\",\"conn-steps\",\"link-group\",\"clc\","
		    "\"handshake\",\"urgent\"]");
		ok_end();
	} else if (!strcmp(op, "reset")) {
		reset_all();
		hs_reset();
		ok_empty();
	} else if (!strcmp(op, "bye")) {
		ok_empty();
	} else if (!strcmp(op, "clc_decode")) {
		op_clc_decode(args);
	} else if (!strncmp(op, "hs_", 3)) {
		op_hs(op, args);
	} else if (!strncmp(op, "dev_", 4)) {
		op_device(op, args);
	} else if (!strncmp(op, "curs_", 5)) {
		op_cursor(op, args);
	} else if (!strncmp(op, "lgr_", 4) && strcmp(op, "lgr_conn_create")) {
		op_lgr(op, args);
	} else if (!strcmp(op, "conn_open") || !strcmp(op, "conn_open_steps") ||
		   !strcmp(op, "conn_open_urg")) {
		op_open(args, !strcmp(op, "conn_open") ? OPEN_PLAIN :
			!strcmp(op, "conn_open_steps") ? OPEN_STEPS : OPEN_URG);
	} else if (!strcmp(op, "conn_step")) {
		c = find_conn(args);
		if (c)
			op_step(c, arg_str(args, "step"));
	} else if (!strcmp(op, "lgr_conn_create")) {
		op_lgr_conn_create(args);
	} else if (!strncmp(op, "conn_", 5)) {
		c = find_conn(args);
		if (!c)
			return;
		if (!strcmp(op, "conn_send") || !strcmp(op, "conn_send_oob"))
			op_send(c, args, !strcmp(op, "conn_send_oob"));
		else if (!strcmp(op, "conn_recv"))
			op_recv(c, args);
		else if (!strcmp(op, "conn_recv_oob"))
			op_recv_oob(c, args);
		else if (!strcmp(op, "conn_atmark"))
			op_atmark(c);
		else if (!strcmp(op, "conn_set_oobinline"))
			op_set_oobinline(c, args);
		else if (!strcmp(op, "conn_shutdown"))
			op_shutdown(c);
		else if (!strcmp(op, "conn_close"))
			op_close(c);
		else if (!strcmp(op, "conn_abort"))
			op_abort(c);
		else if (!strcmp(op, "conn_cursors"))
			op_cursors(c);
		else if (!strcmp(op, "conn_state"))
			op_state(c);
		else
			fail("EOPNOTSUPP", "unknown connection operation");
	} else if (!strcmp(op, "cdc_inject")) {
		c = find_conn(args);
		if (c)
			op_inject(c, args);
	} else {
		fail("EOPNOTSUPP", "this target does not have that operation");
	}
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;

	reset_all();
	while ((got = getline(&line, &cap, stdin)) > 0) {
		struct jval req, *id, *op, *args;
		size_t n = (size_t)got, i = 0;

		while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
				 line[i] == '\n'))
			i++;
		if (i == n)
			continue;
		req_id = -1;
		if (jparse_text(line, n, &req) || req.t != J_OBJ) {
			fail("EBADMSG", "not a JSON object");
			jfree(&req);
			continue;
		}
		id = jget(&req, "id");
		op = jget(&req, "op");
		args = jget(&req, "args");
		req_id = id && id->t == J_NUM && !id->neg && !id->frac && !id->big &&
			 id->u <= (1ULL << 62) ? (long long)id->u : -1;
		answered = 0;
		if (!op || op->t != J_STR)
			fail("EBADMSG", "no op");
		else
			dispatch(op->s, args);
		if (!answered)
			fail("EIO", "no answer");
		if (op && op->t == J_STR && !strcmp(op->s, "bye")) {
			jfree(&req);
			break;
		}
		jfree(&req);
	}
	free(line);
	out_free();
	return 0;
}
