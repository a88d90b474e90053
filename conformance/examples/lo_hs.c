/*
 * lo_hs.c - the handshake endpoints of the C example target (conformance/PROTOCOL.md section
 * 8, capability handshake): the client of net/smc/af_smc.c __smc_connect and the server of
 * smc_listen_work, fed CLC bytes, with their host's answers (link group, DMB, attach) taken
 * from the hs_new config. This target's own limits: 16 devices, 16 peer GIDs per device and
 * 16 namespace PNET ids per config (more are refused with EINVAL); UEIDs are checked with the
 * ASCII rules of smc_clc_ueid_valid.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lo_clc.h"
#include "lo_target.h"

/* SMC_CLC_DECL_* (net/smc/smc_clc.h) */
#define DECL_MEM 0x01010000u
#define DECL_CNFERR 0x03000000u
#define DECL_PEERNOSMC 0x03010000u
#define DECL_IPSEC 0x03020000u
#define DECL_NOSMCDEV 0x03030000u
#define DECL_NOSMCDDEV 0x03030001u
#define DECL_NOSMCRDEV 0x03030002u
#define DECL_NOISM2SUPP 0x03030003u
#define DECL_NOV2EXT 0x03030004u
#define DECL_NOV2DEXT 0x03030005u
#define DECL_NOSMCD2DEV 0x03030007u
#define DECL_NOUEID 0x03030008u
#define DECL_RELEASEERR 0x03030009u
#define DECL_MAXCONNERR 0x0303000Au
#define DECL_MAXLINKERR 0x0303000Bu
#define DECL_MODEUNSUPP 0x03040000u
#define DECL_DIFFPREFIX 0x03070000u
#define DECL_GETVLANERR 0x03080000u
#define DECL_MAX_DMB 0x030D0000u
#define DECL_SYNCERR 0x04000000u
#define DECL_PEERDECL 0x05000000u

#define E_ENOMEM 12
#define E_EAGAIN 11
#define E_EINVAL 22
#define E_EPROTO 71
#define E_ECONNABORTED 103
#define E_ECONNRESET 104
#define E_ETIMEDOUT 110

/* ====================================================================== handshake (section 8) */

#define MAX_DEVS 16
#define MAX_PEER_GIDS 16
#define MAX_PNETS 16
#define PNET_LEN 32

struct dev {
	uint16_t chid;
	uint64_t gid, gid_ext;
	char pnetid[PNET_LEN + 1];
	int has_pnetid, v2, nocopy;
	uint64_t peer_gids[MAX_PEER_GIDS];
	int npeer;
};

struct hcfg {
	struct dev devs[MAX_DEVS];
	int ndev;
	uint8_t ueids[MAX_UEID_TABLE][EID_LEN];
	int nueid;
	int seid_enabled;
	uint8_t system_eid[EID_LEN];
	uint8_t hostname[32];
	int vlan;		/* -1: null (GETVLANERR) */
	int has_route_pnet;
	char route_pnet[PNET_LEN + 1];
	char ns_pnets[MAX_PNETS][PNET_LEN + 1];
	int nns;
	int has_ipv4;
	uint32_t addr;
	int plen;
	long long rcvbuf;
	int smc_release, feature_mask, syn_smc, ipsec;
	/* the host lifecycle's answers */
	uint64_t dmb_token;
	long long dmb_len, lgr_id;
	int lgr_reuse;
	int dmb_fail;		/* 0, or an errno: ENOSPC (28) / ENOMEM */
	int attach_fail;	/* 0, or EINVAL / ENOMEM */
};

enum phase {
	PH_INIT, PH_LISTEN, PH_PROPOSAL_SENT, PH_PROPOSAL_WAIT, PH_ACCEPT_SENT, PH_CONN_PENDING,
	PH_ATTACH_PENDING, PH_ACTIVE, PH_DECLINED, PH_FALLBACK, PH_ERROR, PH_OOPS, PH_HANG
};
#define TERMINAL(p) ((p) >= PH_ACTIVE)
#define WAITING(p) ((p) == PH_PROPOSAL_SENT || (p) == PH_PROPOSAL_WAIT || (p) == PH_ACCEPT_SENT)

static const char *const KIND[] = {
	[PH_ACTIVE] = "active", [PH_DECLINED] = "declined", [PH_FALLBACK] = "fallback",
	[PH_ERROR] = "error", [PH_OOPS] = "oops", [PH_HANG] = "hang",
};

struct plan_step {		/* smc_listen_find_device, one step */
	enum { P_TRY, P_STORE, P_GIVEUP } kind;
	int version, dev;	/* P_TRY */
	uint64_t peer_gid, peer_gid_ext;
	uint8_t eid[EID_LEN];
	uint32_t code;		/* P_STORE, P_GIVEUP */
	int prefer_stored;	/* P_GIVEUP */
};

struct session {
	int version, dev;
	uint8_t eid[EID_LEN];
	int release, feature_mask, first_contact_peer;
	long long lgr_id;
	int first_contact_local;
	uint64_t dmb_token, peer_token;
	int rmbe_size_comp;
};

struct ep {
	int server;
	struct hcfg cfg;
	enum phase phase;
	uint8_t *rx;
	size_t rxlen;
	int eof, decline_version;
	/* client: what was offered (slot 0: the v1 device or -1; 1..: v2 devices) */
	int type_v1, type_v2, slots[1 + MAX_GID_ENTRIES + 1], nslots;
	uint16_t chids[1 + MAX_GID_ENTRIES + 1];
	/* server */
	struct plan_step plan[4 * MAX_DEVS + 16];
	int nplan, iplan;
	uint32_t stored_rc;
	int release, feature_mask;
	struct session s;
	int has_conn;		/* a connection registered and not aborted */
	/* the outcome */
	uint32_t reason;
	int has_reason;
	uint32_t peer_diagnosis;
	int err;
};

static struct ep **eps;
static int neps;

/* what one call produced: messages written and effects asked for */
static char *fx;		/* effects, JSON objects joined by ',' */
static size_t fxlen;
static uint8_t *msgs[32];
static size_t msglens[32];
static int nmsgs;

static void fx_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fx_add(const char *fmt, ...)
{
	va_list ap;
	char tmp[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		n = 0;
	fx = realloc(fx, fxlen + (size_t)n + 2);
	if (!fx)
		exit(70);
	if (fxlen)
		fx[fxlen++] = ',';
	memcpy(fx + fxlen, tmp, (size_t)n);
	fxlen += (size_t)n;
	fx[fxlen] = 0;
}

static void send_msg(const uint8_t *p, size_t n)
{
	if (nmsgs == 32)
		return;
	msgs[nmsgs] = malloc(n);
	if (!msgs[nmsgs])
		exit(70);
	memcpy(msgs[nmsgs], p, n);
	msglens[nmsgs++] = n;
}

static void finish(struct ep *e, enum phase ph) { e->phase = ph; }

static void abort_conn(struct ep *e)	/* smc_conn_abort */
{
	if (!e->has_conn)
		return;
	fx_add("{\"effect\":\"conn_abort\",\"first_contact_local\":%s}",
	       e->s.first_contact_local ? "true" : "false");
	e->has_conn = 0;
}

static void hs_error(struct ep *e, int err)
{
	abort_conn(e);
	e->err = err;
	finish(e, PH_ERROR);
}

static void hdr(uint8_t *b, const uint8_t *eye, int type, size_t len, int version, int typev2,
		int typev1)
{
	memcpy(b, eye, 4);
	b[4] = (uint8_t)type;
	put16(b + 5, (uint16_t)len);
	b[7] = (uint8_t)(version << 4 | typev2 << 2 | typev1);
}

/* smc_connect_decline_fallback / smc_listen_decline */
static void hs_decline(struct ep *e, uint32_t code)
{
	abort_conn(e);
	if (code != DECL_PEERDECL) {
		uint8_t b[44] = {0};
		size_t len = e->decline_version == 1 ? 28 : 44;

		hdr(b, EYE_R, CLC_DECLINE, len, e->decline_version, code == DECL_SYNCERR ? 2 : 0, 0);
		put32(b + 16, code);
		b[20] = (uint8_t)(e->decline_version == 1 ? 0 : 2 << 4); /* SMC_CLC_OS_LINUX */
		memcpy(b + len - TRL_LEN, EYE_R, 4);
		send_msg(b, len);
	}
	e->reason = code;
	e->has_reason = 1;
	finish(e, PH_DECLINED);
}

static int compress_bufsize(long long size)	/* smc_compress_bufsize, SMC-D */
{
	long long multiple;
	int c = 0;

	if (size <= 16384)
		return 0;
	multiple = (size - 1) >> 14;
	while (multiple) {
		c++;
		multiple >>= 1;
	}
	return c > 6 ? 6 : c;
}

/* smcd_clc_prep_confirm_accept + smc_clc_fill_fce_v2x */
static void send_accept_confirm(struct ep *e, int type, int first_contact)
{
	struct dev *d = &e->cfg.devs[e->s.dev];
	uint8_t b[FCE_OFF + FCE_V2X_LEN + TRL_LEN] = {0};
	size_t len;
	uint32_t id = (uint32_t)e->s.lgr_id;
	int v2x = e->s.release >= 1;

	if (e->s.version == 1)
		len = 48;
	else
		len = FCE_OFF + (first_contact ? (v2x ? FCE_V2X_LEN : FCE_LEN) : 0) + TRL_LEN;
	hdr(b, EYE_D, type, len, e->s.version, first_contact ? 2 : 0, T_D);
	put64(b + 8, d->gid);
	put64(b + 16, e->s.dmb_token);
	b[24] = 0;
	b[25] = (uint8_t)(e->s.rmbe_size_comp << 4);
	b[28] = (uint8_t)id; /* lgr->id, host order (x86) */
	b[29] = (uint8_t)(id >> 8);
	b[30] = (uint8_t)(id >> 16);
	b[31] = (uint8_t)(id >> 24);
	if (e->s.version != 1) {
		put16(b + 32, d->chid);
		if (e->s.eid[0]) /* "if (eid && eid[0])" */
			memcpy(b + 34, e->s.eid, EID_LEN);
		put64(b + 66, emulated(d->chid) ? d->gid_ext : 0);
		if (first_contact) {
			uint8_t *f = b + FCE_OFF;

			f[1] = (uint8_t)(2 << 4 | (e->s.release & 0xF));
			memcpy(f + 4, e->cfg.hostname, 32);
			if (v2x)
				put16(f + 38, (uint16_t)e->s.feature_mask);
		}
	}
	memcpy(b + len - TRL_LEN, EYE_D, 4);
	send_msg(b, len);
}

/* ---------------------------------------------------------------- the lifecycle's answers */

static void on_conn_created(struct ep *e, int first_local);
static void on_buf_failed(struct ep *e, int first_local);
static void server_try_failed(struct ep *e, uint32_t code);
static void on_attach(struct ep *e);

enum policy { REUSE_OR_CREATE, CREATE_ONLY, REUSE_ONLY };
static const char *const POLICY[] = {"reuse-or-create", "create-only", "reuse-only"};

static void request_conn(struct ep *e, int version, int vlan, uint16_t chid, enum policy pol)
{
	int first;

	fx_add("{\"effect\":\"request_conn\",\"smcd_version\":%d,\"vlan_id\":%d,\"chid\":%u,"
	       "\"policy\":\"%s\"}", version, vlan, chid, POLICY[pol]);
	e->phase = PH_CONN_PENDING;
	if (pol == CREATE_ONLY) {
		first = 1;
	} else if (pol == REUSE_ONLY && !e->cfg.lgr_reuse) {
		/* smc_conn_create finds no link group: SMC_CLC_DECL_SYNCERR */
		if (e->server)
			server_try_failed(e, DECL_SYNCERR);
		else
			hs_decline(e, DECL_SYNCERR);
		return;
	} else {
		first = !e->cfg.lgr_reuse;
	}
	if (e->cfg.dmb_fail)
		on_buf_failed(e, first);
	else
		on_conn_created(e, first);
}

static void attach_peer(struct ep *e, uint64_t token)
{
	fx_add("{\"effect\":\"attach_peer_dmb\",\"peer_token\":%llu}", (unsigned long long)token);
	e->phase = PH_ATTACH_PENDING;
	on_attach(e);
}

/* ---------------------------------------------------------------- receiving */

static void client_on_accept(struct ep *e, struct clc_msg *m);
static void server_on_proposal(struct ep *e, struct clc_msg *m);
static void server_on_confirm(struct ep *e, struct clc_msg *m);

static void wait_failed(struct ep *e, int timeout)
{
	if (e->rxlen)		/* MSG_WAITALL came back short: "len < recvlen" */
		hs_error(e, E_EPROTO);
	else if (!timeout)
		hs_error(e, E_ECONNRESET);
	else
		hs_error(e, e->server ? E_EAGAIN : E_ETIMEDOUT);
}

static void on_decline(struct ep *e, struct clc_msg *m)
{
	if (m->out_of_sync && e->has_conn) {
		fx_add("{\"effect\":\"lgr_sync_err\"}");
		if (e->server && e->s.first_contact_local) {
			finish(e, PH_HANG);
			return;
		}
		if (e->server) {
			hs_error(e, E_ECONNABORTED);
			return;
		}
	}
	hs_decline(e, DECL_PEERDECL);
	e->peer_diagnosis = m->peer_diagnosis;
}

/* smc_clc_wait_msg on the buffered bytes, while the endpoint waits for a message */
static void hs_receive(struct ep *e)
{
	int expected;
	size_t buflen, length;
	struct clc_msg m;
	char why[160];
	int rc;

	if (!WAITING(e->phase))
		return;
	if (!e->server) {
		expected = CLC_ACCEPT;
		buflen = ACCEPT_BUF;
	} else {
		expected = e->phase == PH_PROPOSAL_WAIT ? CLC_PROPOSAL : CLC_CONFIRM;
		buflen = PROP_AREA;
	}
	if (e->rxlen < HDR_LEN) {
		if (e->eof)
			wait_failed(e, 0);
		return;
	}
	length = be16(e->rx + 5);
	if (e->rx[7] >> 4 < 1 || (e->rx[4] != expected && e->rx[4] != CLC_DECLINE)) {
		hs_error(e, E_EPROTO);
		return;
	}
	if (length < HDR_LEN) {
		hs_error(e, E_EPROTO);
		return;
	}
	if (e->rxlen < length) {
		if (e->eof)
			wait_failed(e, 0);
		return;
	}
	rc = clc_check(e->rx, length, length <= buflen, &m, why);
	e->rxlen -= length;
	memmove(e->rx, e->rx + length, e->rxlen);
	if (rc) {
		msg_free(&m);
		hs_error(e, E_EPROTO);
		return;
	}
	if (m.type == CLC_DECLINE)
		on_decline(e, &m);
	else if (!e->server)
		client_on_accept(e, &m);
	else if (e->phase == PH_PROPOSAL_WAIT)
		server_on_proposal(e, &m);
	else
		server_on_confirm(e, &m);
	msg_free(&m);
}

/* ---------------------------------------------------------------- client */

static int pnet_eq(const struct dev *d, const char *p) { return d->has_pnetid && !strcmp(d->pnetid, p); }

/* smc_find_proposal_devices (with __smc_connect's VLAN step): 0 or NOSMCDEV */
static uint32_t client_find_devices(struct ep *e)
{
	struct hcfg *c = &e->cfg;
	int v1dev = -1, smcd_v1 = c->vlan >= 0, smcd_v2 = 1, v2cap = 0;

	for (int i = 0; i < c->ndev; i++)
		v2cap |= c->devs[i].v2;
	if (smcd_v1 && c->has_route_pnet) {
		for (int i = 0; i < c->ndev; i++)
			if (pnet_eq(&c->devs[i], c->route_pnet)) {
				v1dev = i;
				break;
			}
	}
	if (v1dev < 0)
		smcd_v1 = 0;
	e->type_v1 = smcd_v1 ? T_D : T_N;
	e->slots[0] = v1dev;
	e->chids[0] = v1dev >= 0 ? c->devs[v1dev].chid : 0;
	e->nslots = 1;
	if (v2cap) {	/* smc_find_ism_v2_device_clnt */
		uint32_t rc = e->type_v1 == T_D ? 0 : DECL_NOSMCDDEV;
		int entry = 1;

		for (int i = 0; i < c->ndev; i++) {
			struct dev *d = &c->devs[i];
			int first = v1dev >= 0 ? 0 : 1, dup = 0, inns = 0;

			if (i == v1dev)
				continue;
			for (int k = first; k < e->nslots; k++)
				dup |= e->chids[k] == d->chid;
			if (dup)
				continue;
			if (d->has_pnetid) {
				for (int k = 0; k < c->nns; k++)
					inns |= !strcmp(c->ns_pnets[k], d->pnetid);
				if (!inns)
					continue;
			}
			if (emulated(d->chid) && entry == MAX_GID_ENTRIES)
				continue;
			e->slots[e->nslots] = i;
			e->chids[e->nslots++] = d->chid;
			rc = 0;
			entry += emulated(d->chid) ? 2 : 1;
			if (entry > MAX_GID_ENTRIES)
				break;
		}
		if (rc || (v1dev < 0 && e->nslots == 1))
			smcd_v2 = 0;
	} else {
		smcd_v2 = 0;
	}
	e->type_v2 = smcd_v2 ? T_D : T_N;
	return e->type_v1 == T_N && e->type_v2 == T_N ? DECL_NOSMCDEV : 0;
}

/* smc_clc_send_proposal: 0, or -1 for CNFERR */
static int client_proposal(struct ep *e)
{
	struct hcfg *c = &e->cfg;
	uint8_t b[PROP_AREA] = {0};
	int prefix = 0, eid_cnt = 0, ngid = 0, seid = 0;
	size_t len, v2_at, sd_at;
	uint64_t ism_gid = 0;
	uint16_t ism_chid = 0;
	struct gidchid gc[2 * MAX_GID_ENTRIES];
	const uint8_t *system_eid = NULL;
	int v2cap = 0;

	for (int i = 0; i < c->ndev; i++)
		v2cap |= c->devs[i].v2;
	if (e->type_v1 != T_N) {
		if (!c->has_ipv4) {	/* smc_clc_prfx_set fails */
			if (e->type_v2 == T_N)
				return -1;
			e->type_v1 = T_N;
		} else {
			prefix = 1;
		}
	}
	if (SMCD(e->type_v1) && e->slots[0] >= 0) {
		ism_gid = c->devs[e->slots[0]].gid;
		ism_chid = c->devs[e->slots[0]].chid;
	}
	if (SMCD(e->type_v2)) {
		seid = c->seid_enabled;
		if (v2cap && seid)
			system_eid = c->system_eid;
		for (int k = 1; k < e->nslots; k++) {
			struct dev *d = &c->devs[e->slots[k]];

			gc[ngid].gid = d->gid;
			gc[ngid++].chid = d->chid;
			if (emulated(d->chid)) {
				gc[ngid].gid = d->gid_ext;
				gc[ngid++].chid = d->chid;
			}
		}
	}
	if (e->type_v2 != T_N)
		eid_cnt = c->nueid;
	len = PROP_BASE + PROP_SMCD + (prefix ? PRFX_LEN : 0) +
	      (e->type_v2 != T_N ? (size_t)(V2_EXT + EID_LEN * eid_cnt) : 0) +
	      (SMCD(e->type_v2) ? (size_t)(SMCD_V2_EXT + GIDCHID * ngid) : 0) + TRL_LEN;
	hdr(b, EYE_R, CLC_PROPOSAL, len, 2, e->type_v2, e->type_v1); /* Linux sends version 2 */
	put16(b + 38, (uint16_t)(prefix ? PROP_SMCD : 0));
	put64(b + 40, ism_gid);
	put16(b + 48, ism_chid);
	put16(b + 50, (uint16_t)(e->type_v2 != T_N ? 28 + (prefix ? PRFX_LEN : 0) : 0));
	if (prefix) {
		uint32_t mask = c->plen ? 0xFFFFFFFFu << (32 - c->plen) : 0;

		put32(b + 80, c->addr & mask);
		b[84] = (uint8_t)c->plen;
	}
	if (e->type_v2 != T_N) {
		v2_at = 80 + (prefix ? PRFX_LEN : 0);
		b[v2_at] = (uint8_t)eid_cnt;
		b[v2_at + 1] = (uint8_t)(SMCD(e->type_v2) ? ngid : 0);
		b[v2_at + 3] = (uint8_t)((c->smc_release & 0xF) << 4 | (SMCD(e->type_v2) && seid));
		put16(b + v2_at + 6, (uint16_t)(SMCD(e->type_v2) ? 32 + EID_LEN * eid_cnt : 0));
		put16(b + v2_at + 26, (uint16_t)c->feature_mask);
		for (int k = 0; k < eid_cnt; k++)
			memcpy(b + v2_at + V2_EXT + EID_LEN * k, c->ueids[k], EID_LEN);
		if (SMCD(e->type_v2)) {
			sd_at = v2_at + V2_EXT + EID_LEN * (size_t)eid_cnt;
			if (system_eid)
				memcpy(b + sd_at, system_eid, EID_LEN);
			for (int k = 0; k < ngid; k++) {
				put64(b + sd_at + SMCD_V2_EXT + GIDCHID * k, gc[k].gid);
				put16(b + sd_at + SMCD_V2_EXT + GIDCHID * k + 8, gc[k].chid);
			}
		}
	}
	memcpy(b + len - TRL_LEN, EYE_R, 4);
	send_msg(b, len);
	return 0;
}

static void client_connect(struct ep *e)	/* __smc_connect up to the Accept wait */
{
	int v2cap = 0;
	uint32_t rc;

	for (int i = 0; i < e->cfg.ndev; i++)
		v2cap |= e->cfg.devs[i].v2;
	e->decline_version = v2cap ? 2 : 1;
	if (!e->cfg.syn_smc) {
		e->reason = DECL_PEERNOSMC;
		e->has_reason = 1;
		finish(e, PH_FALLBACK);
		return;
	}
	if (e->cfg.ipsec) {
		hs_decline(e, DECL_IPSEC);
		return;
	}
	rc = client_find_devices(e);
	if (rc) {
		hs_decline(e, rc);
		return;
	}
	if (client_proposal(e)) {
		hs_decline(e, DECL_CNFERR);
		return;
	}
	e->phase = PH_PROPOSAL_SENT;
	hs_receive(e);
}

/* smc_connect_check_aclc and smc_connect_ism up to smc_conn_create */
static void client_on_accept(struct ep *e, struct clc_msg *m)
{
	int version = m->version == 1 ? 1 : 2;
	int offered = m->version >= 2 ? e->type_v2 : e->type_v1;
	int selected = -1;
	struct dev *d;

	e->decline_version = version;
	if ((m->typev1 == T_R && !SMCR(offered)) || (m->typev1 == T_D && !SMCD(offered))) {
		hs_decline(e, DECL_MODEUNSUPP);
		return;
	}
	memset(&e->s, 0, sizeof(e->s));
	if (m->version == 2) {
		if (m->first_contact) {
			int release = m->buf[FCE_OFF + 1] & 0xF;

			e->s.release = release;
			if (release >= 1) /* smc_clc_clnt_v2x_features_validate */
				e->s.feature_mask = be16(m->buf + FCE_OFF + 38) & e->cfg.feature_mask;
		}
		for (int i = 0; i < e->nslots; i++)	/* smc_v2_determine_accepted_chid */
			if (e->slots[i] >= 0 && e->chids[i] == m->chid) {
				selected = i;
				break;
			}
		if (selected < 0) {
			hs_error(e, E_EPROTO);
			return;
		}
		/* (an emulated CHID also takes the Accept's gid_ext as the peer's: the link-group
		 * match of the host, not observable here) */
	} else {
		selected = 0;
	}
	if (e->slots[selected] < 0) {	/* smc_conn_create uses ism_dev[0] == NULL */
		finish(e, PH_OOPS);
		return;
	}
	d = &e->cfg.devs[e->slots[selected]];
	e->s.version = m->version;
	e->s.dev = e->slots[selected];
	if (m->version > 1)
		memcpy(e->s.eid, m->eid, EID_LEN);
	e->s.first_contact_peer = m->first_contact;
	e->s.peer_token = m->token;
	request_conn(e, version, e->cfg.vlan > 0 ? e->cfg.vlan : 0, d->chid,
		     m->first_contact ? CREATE_ONLY : REUSE_ONLY);
}

static void client_confirm(struct ep *e)
{
	send_accept_confirm(e, CLC_CONFIRM, e->s.first_contact_local);
	finish(e, PH_ACTIVE);
}

/* ---------------------------------------------------------------- server */

static int cantalk(const struct dev *d, uint64_t gid, uint64_t gid_ext)	/* smc_ism_cantalk */
{
	if (emulated(d->chid))
		return gid == d->gid && gid_ext == d->gid_ext;
	for (int i = 0; i < d->npeer; i++)
		if (d->peer_gids[i] == gid)
			return 1;
	return 0;
}

/* smc_clc_match_eid: the EID both share, or NULL */
static const uint8_t *match_eid(struct ep *e, struct clc_msg *p, int with_seid)
{
	struct hcfg *c = &e->cfg;
	int v2cap = 0;

	for (int i = 0; i < c->ndev; i++)
		v2cap |= c->devs[i].v2;
	if (with_seid && p->has_smcd_v2 && v2cap && c->seid_enabled && p->seid &&
	    !memcmp(p->system_eid, c->system_eid, EID_LEN))
		return p->system_eid;
	for (int k = 0; k < p->eid_cnt; k++)
		for (int j = 0; j < c->nueid; j++)
			if (!memcmp(p->eids + EID_LEN * k, c->ueids[j], EID_LEN))
				return p->eids + EID_LEN * k;
	return NULL;
}

static struct plan_step *plan_add(struct ep *e, int kind, uint32_t code)
{
	struct plan_step *s = &e->plan[e->nplan++];

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->code = code;
	s->prefer_stored = 1;
	return s;
}

/* smc_listen_find_device as a list of steps */
static void server_plan(struct ep *e, struct clc_msg *p, int smcd_v, int smcr_v)
{
	struct hcfg *c = &e->cfg;
	int smcd_area = p->has_smcd && !(SMCD(p->typev1) && p->iparea_offset != PROP_SMCD);
	int has_v2 = smcd_area && p->has_v2;
	uint32_t prfx_rc = 0;

	e->nplan = e->iplan = 0;
	/* smc_find_ism_v2_device_serv */
	if ((smcd_v & 2) && SMCD(p->typev2) && has_v2 && p->has_smcd_v2) {
		uint16_t pchid[1 + MAX_GID_ENTRIES];
		uint64_t pgid[1 + MAX_GID_ENTRIES], pext[1 + MAX_GID_ENTRIES];
		int np = 0, nm = 0, mdev[1 + MAX_GID_ENTRIES];
		uint64_t mgid[1 + MAX_GID_ENTRIES], mext[1 + MAX_GID_ENTRIES];

		if (p->ism_chid) {
			pchid[np] = p->ism_chid;
			pgid[np] = p->ism_gid;
			pext[np++] = 0;
		}
		for (int i = 0; i < p->gid_cnt; i++) {
			uint16_t chid = p->gidchids[i].chid;
			uint64_t gid = p->gidchids[i].gid, ext = 0;

			if (emulated(chid)) {
				if (i + 1 == p->gid_cnt || p->gidchids[i + 1].chid != chid)
					continue;
				ext = p->gidchids[++i].gid;
			}
			pchid[np] = chid;
			pgid[np] = gid;
			pext[np++] = ext;
		}
		for (int k = 0; k < np; k++) {	/* smc_check_ism_v2_match */
			for (int i = 0; i < c->ndev; i++) {
				int taken = 0;

				for (int j = 0; j < nm; j++)
					taken |= mdev[j] == i;
				if (taken)
					continue;
				if (c->devs[i].chid == pchid[k] && cantalk(&c->devs[i], pgid[k], pext[k])) {
					mdev[nm] = i;
					mgid[nm] = pgid[k];
					mext[nm++] = emulated(pchid[k]) ? pext[k] : 0;
					break;
				}
			}
		}
		if (!nm) {
			plan_add(e, P_STORE, DECL_NOSMCD2DEV);
		} else {
			const uint8_t *eid = match_eid(e, p, 1);

			for (int j = 0; eid && j < nm; j++) {
				struct plan_step *s = plan_add(e, P_TRY, 0);

				s->version = 2;
				s->dev = mdev[j];
				s->peer_gid = mgid[j];
				s->peer_gid_ext = mext[j];
				memcpy(s->eid, eid, EID_LEN);
			}
		}
	}
	/* smc_listen_prfx_check */
	if (p->typev1 != T_N) {
		int match = 0;

		if (!p->ipv6_cnt && c->has_ipv4 && p->prefix_len == c->plen) {
			uint32_t mask = c->plen ? 0xFFFFFFFFu << (32 - c->plen) : 0;

			match = (be32(p->subnet) & mask) == (c->addr & mask);
		}
		if (!match) {
			prfx_rc = DECL_DIFFPREFIX;
			plan_add(e, P_STORE, prfx_rc);
		}
	}
	if (c->vlan < 0) {	/* smc_vlan_by_tcpsk */
		plan_add(e, P_GIVEUP, DECL_GETVLANERR);
		return;
	}
	/* smc_find_ism_v1_device_serv */
	if (!prfx_rc && (smcd_v & 1) && SMCD(p->typev1) && smcd_area) {
		uint64_t peer_gid = p->ism_gid;
		int found = -1;

		if (c->has_route_pnet)
			for (int i = 0; i < c->ndev; i++)
				if (pnet_eq(&c->devs[i], c->route_pnet) &&
				    (!peer_gid || cantalk(&c->devs[i], peer_gid, 0))) {
					found = i;
					break;
				}
		if (found < 0) {
			plan_add(e, P_STORE, DECL_NOSMCDDEV);
		} else {
			struct plan_step *s = plan_add(e, P_TRY, 0);

			s->version = 1;
			s->dev = found;
			s->peer_gid = peer_gid;
		}
	}
	if (!SMCR(p->typev1) && !SMCR(p->typev2)) {
		plan_add(e, P_GIVEUP, DECL_NOSMCDDEV);
		return;
	}
	/* SMC-R: this host has no RoCE device */
	if ((smcr_v & 2) && SMCR(p->typev2) && has_v2 && match_eid(e, p, 0))
		plan_add(e, P_STORE, DECL_NOSMCRDEV);
	if (!prfx_rc) {
		plan_add(e, P_STORE, DECL_NOSMCDEV);
		plan_add(e, P_GIVEUP, DECL_NOSMCDEV);
	} else {
		plan_add(e, P_GIVEUP, DECL_NOSMCDEV)->prefer_stored = 0;
	}
}

static void server_run_plan(struct ep *e)
{
	while (e->iplan < e->nplan) {
		struct plan_step *s = &e->plan[e->iplan++];

		if (s->kind == P_STORE) {
			if (!e->stored_rc)
				e->stored_rc = s->code;
		} else if (s->kind == P_GIVEUP) {
			uint32_t code = s->prefer_stored && e->stored_rc ? e->stored_rc : s->code;

			e->iplan = e->nplan;
			hs_decline(e, code);
			return;
		} else {
			struct dev *d = &e->cfg.devs[s->dev];

			memset(&e->s, 0, sizeof(e->s));
			e->s.version = s->version;
			e->s.dev = s->dev;
			memcpy(e->s.eid, s->eid, EID_LEN);
			e->s.release = e->release;
			e->s.feature_mask = e->feature_mask;
			request_conn(e, s->version,
				     s->version == 1 && e->cfg.vlan > 0 ? e->cfg.vlan : 0, d->chid,
				     REUSE_OR_CREATE);
			return;
		}
	}
}

static void server_try_failed(struct ep *e, uint32_t code)
{
	if (!e->stored_rc)
		e->stored_rc = code;
	server_run_plan(e);
}

/* smc_listen_v2_check: rc (0 = go on) */
static uint32_t server_v2_check(struct ep *e, struct clc_msg *p, int *smcd_v, int *smcr_v,
				int *release)
{
	int smcd = SMCD(p->typev1) ? 1 : 0, smcr = SMCR(p->typev1) ? 1 : 0, v2cap = 0;
	int smcd_area = p->has_smcd && !(SMCD(p->typev1) && p->iparea_offset != PROP_SMCD);
	uint32_t rc = DECL_PEERNOSMC;

	for (int i = 0; i < e->cfg.ndev; i++)
		v2cap |= e->cfg.devs[i].v2;
	*release = 0;
	if (p->version > 1) {
		if (SMCD(p->typev2))
			smcd |= 2;
		if (SMCR(p->typev2))
			smcr |= 2;
	}
	if ((smcd | smcr) & 2) {
		if (!(smcd_area && p->has_v2)) {
			smcd &= ~2;
			smcr &= ~2;
			rc = DECL_NOV2EXT;
		} else {
			if (smcd & 2) {
				if (!v2cap) {
					smcd &= ~2;
					rc = DECL_NOISM2SUPP;
				} else if (!p->has_smcd_v2) {
					smcd &= ~2;
					rc = DECL_NOV2DEXT;
				} else if (!p->eid_cnt && !p->seid) {
					smcd &= ~2;
					rc = DECL_NOUEID;
				}
			}
			if ((smcr & 2) && !p->eid_cnt) {
				smcr &= ~2;
				rc = DECL_NOUEID;
			}
			*release = p->release < e->cfg.smc_release ? p->release : e->cfg.smc_release;
		}
	}
	*smcd_v = smcd;
	*smcr_v = smcr;
	return smcd || smcr ? 0 : rc;
}

static void server_on_proposal(struct ep *e, struct clc_msg *p)
{
	int smcd_v, smcr_v, release;
	uint32_t rc;

	e->decline_version = p->version > 1 ? 2 : 1;
	if (e->cfg.ipsec) {
		hs_decline(e, DECL_IPSEC);
		return;
	}
	rc = server_v2_check(e, p, &smcd_v, &smcr_v, &release);
	if (rc) {
		hs_decline(e, rc);
		return;
	}
	/* smc_clc_srv_v2x_features_validate */
	if (((smcd_v | smcr_v) & 2) && release >= 1 && (smcr_v & 2)) {
		if ((p->max_conns < 255 ? p->max_conns : 255) < 16) {
			hs_decline(e, DECL_MAXCONNERR);
			return;
		}
		if ((p->max_links < 2 ? p->max_links : 2) < 1) {
			hs_decline(e, DECL_MAXLINKERR);
			return;
		}
	}
	e->release = release;
	e->feature_mask = e->cfg.feature_mask;
	server_plan(e, p, smcd_v, smcr_v);
	server_run_plan(e);
}

/* from the Confirm to SMC_ACTIVE */
static void server_on_confirm(struct ep *e, struct clc_msg *m)
{
	if (m->version != 1 && m->first_contact) {
		int fce_release = m->buf[FCE_OFF + 1] & 0xF;

		if (e->s.release != fce_release) {
			hs_decline(e, DECL_RELEASEERR);
			return;
		}
	}
	e->s.peer_token = m->token;
	if (e->cfg.devs[e->s.dev].nocopy) {
		attach_peer(e, m->token);
		return;
	}
	finish(e, PH_ACTIVE);
}

/* ---------------------------------------------------------------- answers, continued */

static void on_conn_created(struct ep *e, int first_local)
{
	e->s.lgr_id = e->cfg.lgr_id;
	e->s.first_contact_local = first_local;
	e->s.dmb_token = e->cfg.dmb_token;
	e->s.rmbe_size_comp = compress_bufsize(e->cfg.dmb_len);
	e->has_conn = 1;
	if (!e->server) {
		if (e->cfg.devs[e->s.dev].nocopy)
			attach_peer(e, e->s.peer_token);
		else
			client_confirm(e);
		return;
	}
	send_accept_confirm(e, CLC_ACCEPT, first_local);
	e->phase = PH_ACCEPT_SENT;
	hs_receive(e);
}

static void on_buf_failed(struct ep *e, int first_local)
{
	uint32_t code = e->cfg.dmb_fail == 28 ? DECL_MAX_DMB : DECL_MEM;

	e->s.first_contact_local = first_local;
	e->has_conn = 1;
	abort_conn(e);	/* inside smc_listen_ism_init / smc_connect_abort */
	if (e->server)
		server_try_failed(e, code);
	else
		hs_decline(e, code);
}

static void on_attach(struct ep *e)
{
	if (e->cfg.attach_fail) {
		if (!e->server)	/* smc_connect_ism: "try to fallback" */
			hs_decline(e, DECL_MEM);
		else		/* smc_listen_work: a negative rc, no fallback */
			hs_error(e, e->cfg.attach_fail);
		return;
	}
	if (!e->server)
		client_confirm(e);
	else
		finish(e, PH_ACTIVE);
}

/* ---------------------------------------------------------------- hs_new config */

static const char *const CONFIG_KEYS[] = {
	"gid", "gid_ext", "devices", "ueids", "hostname", "ipv4", "vlan_id", "route_pnetid",
	"ns_pnetids", "rcvbuf", "smc_release", "syn_smc", "ipsec", "system_eid", "dmb_token",
	"dmb_len", "lgr_id", "lgr", "dmb_fail", "attach_fail", NULL
};
static const char *const DEVICE_KEYS[] = {
	"name", "chid", "gid", "gid_ext", "pnetid", "v2", "nocopy", "peer_gids", NULL
};

static int known(const char *const *keys, const char *k)
{
	for (int i = 0; keys[i]; i++)
		if (!strcmp(keys[i], k))
			return 1;
	return 0;
}

/* smc_clc_ueid_valid (ASCII: A-Z, 0-9, '.', '-'; the first alphanumeric) on a padded EID */
static int ueid_valid(const uint8_t *u)
{
	int end = EID_LEN - 1;

	while (end >= 0 && (u[end] == ' ' || (u[end] >= 9 && u[end] <= 13)))
		end--;
	if (end < 0)
		return 0;
	if (!((u[0] >= 'A' && u[0] <= 'Z') || (u[0] >= '0' && u[0] <= '9')))
		return 0;
	for (int i = 0; i <= end; i++)
		if (!((u[i] >= 'A' && u[i] <= 'Z') || (u[i] >= '0' && u[i] <= '9') || u[i] == '.' ||
		      u[i] == '-'))
			return 0;
	return 1;
}

static int pad32(const struct jval *v, uint8_t *dst, int allow_empty)
{
	if (!v || v->t != J_STR || v->slen > 32 || (!allow_empty && !v->slen))
		return 0;
	memset(dst, ' ', 32);
	memcpy(dst, v->s, v->slen);
	return 1;
}

static int pnet(const struct jval *v, char *dst, int *has)
{
	*has = 0;
	if (!v || v->t == J_NULL)
		return 1;
	if (v->t != J_STR || v->slen > PNET_LEN)
		return 0;
	memcpy(dst, v->s, v->slen + 1);
	*has = 1;
	return 1;
}

static int num_in(const struct jval *v, uint64_t max, uint64_t *out_v)
{
	return jval_u64(v, out_v) && *out_v <= max;
}

#define CFG_BAD(text) do { snprintf(why, 200, "%s", text); return -1; } while (0)

static int parse_device(const struct jval *v, struct dev *d, char *why)
{
	uint64_t x;
	const struct jval *f;

	if (!v || v->t != J_OBJ)
		CFG_BAD("config.devices[]: expected an object");
	for (int i = 0; i < v->n; i++)
		if (!known(DEVICE_KEYS, v->keys[i]))
			CFG_BAD("config.devices[]: unknown key (known: name, chid, gid, gid_ext, "
				"pnetid, v2, nocopy, peer_gids)");
	memset(d, 0, sizeof(*d));
	if (!num_in(jget((struct jval *)v, "chid"), 0xFFFF, &x))
		CFG_BAD("config.devices[].chid is required: a u16");
	d->chid = (uint16_t)x;
	if (!jval_u64(jget((struct jval *)v, "gid"), &d->gid))
		CFG_BAD("config.devices[].gid is required: a u64");
	f = jget((struct jval *)v, "gid_ext");
	if (f && !jval_u64(f, &d->gid_ext))
		CFG_BAD("config.devices[].gid_ext: a u64");
	if (!pnet(jget((struct jval *)v, "pnetid"), d->pnetid, &d->has_pnetid))
		CFG_BAD("config.devices[].pnetid: null or a string of up to 32 characters");
	f = jget((struct jval *)v, "v2");
	d->v2 = 1;
	if (f && f->t != J_BOOL)
		CFG_BAD("config.devices[].v2: true or false");
	if (f)
		d->v2 = f->b;
	f = jget((struct jval *)v, "nocopy");
	d->nocopy = d->chid == 0xFFFF;
	if (f && f->t != J_NULL && f->t != J_BOOL)
		CFG_BAD("config.devices[].nocopy: null, true or false");
	if (f && f->t == J_BOOL)
		d->nocopy = f->b;
	f = jget((struct jval *)v, "peer_gids");
	if (f && (f->t != J_ARR || f->n > MAX_PEER_GIDS))
		CFG_BAD("config.devices[].peer_gids: a list of up to 16 u64");
	for (int i = 0; f && i < f->n; i++)
		if (!jval_u64(&f->items[i], &d->peer_gids[d->npeer++]))
			CFG_BAD("config.devices[].peer_gids: a list of u64");
	return 0;
}

static int parse_config(struct jval *v, struct hcfg *c, char *why)
{
	struct jval *f;
	uint64_t x;

	if (!v || v->t != J_OBJ)
		CFG_BAD("config: expected an object");
	for (int i = 0; i < v->n; i++)
		if (!known(CONFIG_KEYS, v->keys[i])) {
			snprintf(why, 200, "config: unknown key '%.60s'", v->keys[i]);
			return -1;
		}
	memset(c, 0, sizeof(*c));
	/* the defaults of PROTOCOL.md section 8 */
	c->devs[0].chid = 0xFFFF;
	c->devs[0].gid = 0x1122334455667788ULL;
	c->devs[0].gid_ext = 0x99AABBCCDDEEFF00ULL;
	c->devs[0].v2 = c->devs[0].nocopy = 1;
	c->ndev = 1;
	memcpy(c->ueids[0], "SMCD-CHECK-UEID                 ", 32);
	c->nueid = 1;
	memcpy(c->hostname, "smcd-check                      ", 32);
	c->has_ipv4 = 1;
	c->addr = 0x7F000001;
	c->plen = 8;
	c->rcvbuf = 131072;
	c->smc_release = 1;
	c->feature_mask = 1;	/* SMC_FEATURE_MASK */
	c->syn_smc = 1;
	c->dmb_token = 0x0A0B0C0D0E0F1011ULL;
	c->dmb_len = 65536;
	c->lgr_id = 256;

	if ((f = jget(v, "gid")) && !jval_u64(f, &c->devs[0].gid))
		CFG_BAD("config.gid: a u64");
	if ((f = jget(v, "gid_ext")) && !jval_u64(f, &c->devs[0].gid_ext))
		CFG_BAD("config.gid_ext: a u64");
	if ((f = jget(v, "devices")) && f->t != J_NULL) {
		if (f->t != J_ARR || f->n > MAX_DEVS)
			CFG_BAD("config.devices: a list of up to 16 device objects");
		c->ndev = f->n;
		for (int i = 0; i < f->n; i++)
			if (parse_device(&f->items[i], &c->devs[i], why))
				return -1;
	}
	if ((f = jget(v, "ueids"))) {
		if (f->t != J_ARR || f->n > MAX_UEID_TABLE)
			CFG_BAD("config.ueids: a list of up to 4 UEIDs (SMC_MAX_UEID)");
		c->nueid = f->n;
		for (int i = 0; i < f->n; i++) {
			if (!pad32(&f->items[i], c->ueids[i], 1) || !ueid_valid(c->ueids[i]))
				CFG_BAD("config.ueids: a UEID the kernel refuses (smc_clc_ueid_valid)");
			for (int j = 0; j < i; j++)
				if (!memcmp(c->ueids[i], c->ueids[j], EID_LEN))
					CFG_BAD("config.ueids: a UEID twice (-EEXIST)");
		}
	}
	if ((f = jget(v, "hostname"))) {
		if (f->t != J_STR)
			CFG_BAD("config.hostname: a string");
		memset(c->hostname, ' ', 32);
		memcpy(c->hostname, f->s, f->slen > 32 ? 32 : f->slen);
	}
	if ((f = jget(v, "system_eid")) && f->t != J_NULL) {
		if (!pad32(f, c->system_eid, 0))
			CFG_BAD("config.system_eid: a string of 1..32 characters");
		c->seid_enabled = 1;
	}
	if ((f = jget(v, "ipv4"))) {
		uint64_t a, l;

		if (f->t == J_NULL) {
			c->has_ipv4 = 0;
		} else if (f->t != J_ARR || f->n != 2 || !num_in(&f->items[0], 0xFFFFFFFFu, &a) ||
			   !num_in(&f->items[1], 32, &l)) {
			CFG_BAD("config.ipv4: [address u32, prefix_len 0..32] or null");
		} else {
			c->addr = (uint32_t)a;
			c->plen = (int)l;
		}
	}
	if ((f = jget(v, "vlan_id"))) {
		if (f->t == J_NULL)
			c->vlan = -1;
		else if (!num_in(f, 4095, &x))
			CFG_BAD("config.vlan_id: 0..4095 or null");
		else
			c->vlan = (int)x;
	}
	if (!pnet(jget(v, "route_pnetid"), c->route_pnet, &c->has_route_pnet))
		CFG_BAD("config.route_pnetid: null or a string of up to 32 characters");
	if ((f = jget(v, "ns_pnetids"))) {
		if (f->t != J_ARR || f->n > MAX_PNETS)
			CFG_BAD("config.ns_pnetids: a list of up to 16 strings");
		for (int i = 0; i < f->n; i++) {
			int has;

			if (f->items[i].t != J_STR || !pnet(&f->items[i], c->ns_pnets[i], &has))
				CFG_BAD("config.ns_pnetids: a list of strings of up to 32 characters");
		}
		c->nns = f->n;
	}
	if ((f = jget(v, "rcvbuf"))) {
		if (!num_in(f, 0x7FFFFFFF, &x))
			CFG_BAD("config.rcvbuf: an unsigned 31-bit int");
		c->rcvbuf = (long long)x;
	}
	if ((f = jget(v, "smc_release"))) {
		if (!num_in(f, 15, &x))
			CFG_BAD("config.smc_release: 0..15");
		c->smc_release = (int)x;
	}
	if ((f = jget(v, "syn_smc"))) {
		if (f->t != J_BOOL)
			CFG_BAD("config.syn_smc: true or false");
		c->syn_smc = f->b;
	}
	if ((f = jget(v, "ipsec"))) {
		if (f->t != J_BOOL)
			CFG_BAD("config.ipsec: true or false");
		c->ipsec = f->b;
	}
	if ((f = jget(v, "dmb_token")) && !jval_u64(f, &c->dmb_token))
		CFG_BAD("config.dmb_token: a u64");
	if ((f = jget(v, "dmb_len"))) {
		if (!num_in(f, 1 << 20, &x) || x < 16384 || (x & (x - 1)))
			CFG_BAD("config.dmb_len: an SMC-D buffer size (a power of two, 16 KiB..1 MiB)");
		c->dmb_len = (long long)x;
	}
	if ((f = jget(v, "lgr_id"))) {
		if (!num_in(f, 0xFFFFFFFFu, &x))
			CFG_BAD("config.lgr_id: a u32");
		c->lgr_id = (long long)x;
	}
	if ((f = jget(v, "lgr"))) {
		if (f->t != J_STR || (strcmp(f->s, "new") && strcmp(f->s, "reuse")))
			CFG_BAD("config.lgr: \"new\" or \"reuse\"");
		c->lgr_reuse = !strcmp(f->s, "reuse");
	}
	if ((f = jget(v, "dmb_fail")) && f->t != J_NULL) {
		if (f->t == J_STR && !strcmp(f->s, "ENOSPC"))
			c->dmb_fail = 28;
		else if (f->t == J_STR && !strcmp(f->s, "ENOMEM"))
			c->dmb_fail = E_ENOMEM;
		else
			CFG_BAD("config.dmb_fail: null, \"ENOSPC\" or \"ENOMEM\"");
	}
	if ((f = jget(v, "attach_fail")) && f->t != J_NULL) {
		if (f->t == J_STR && !strcmp(f->s, "EINVAL"))
			c->attach_fail = E_EINVAL;
		else if (f->t == J_STR && !strcmp(f->s, "ENOMEM"))
			c->attach_fail = E_ENOMEM;
		else
			CFG_BAD("config.attach_fail: null, \"EINVAL\" or \"ENOMEM\"");
	}
	return 0;
}

/* ---------------------------------------------------------------- the operations */

static void calls_reset(void)
{
	for (int i = 0; i < nmsgs; i++)
		free(msgs[i]);
	nmsgs = 0;
	fxlen = 0;
	if (fx)
		fx[0] = 0;
}

static void hs_answer(struct ep *e, int handle)
{
	ok_begin();
	if (handle)
		out("\"ep\":%d,", handle);
	out("\"out\":[");
	for (int i = 0; i < nmsgs; i++) {
		out("%s\"", i ? "," : "");
		out_hex(msgs[i], msglens[i]);
		out("\"");
	}
	out("],\"outcome\":");
	if (!TERMINAL(e->phase)) {
		out("null");
	} else {
		out("{\"kind\":\"%s\",\"reason\":", KIND[e->phase]);
		if (e->has_reason)
			out("%lu", (unsigned long)e->reason);
		else
			out("null");
		out(",\"peer_diagnosis\":%lu,\"errno\":", (unsigned long)e->peer_diagnosis);
		if (e->phase == PH_ERROR)
			out("%d}", e->err);
		else
			out("null}");
	}
	out(",\"effects\":[%s]", fx ? fx : "");
	ok_end();
	calls_reset();
}

void op_hs(const char *op, struct jval *args)
{
	struct ep *e;
	char why[200];

	calls_reset();
	if (!strcmp(op, "hs_new")) {
		const char *role = arg_str(args, "role");
		struct ep **grown;

		if (!role || (strcmp(role, "client") && strcmp(role, "server"))) {
			fail("EINVAL", "role: expected client or server");
			return;
		}
		e = calloc(1, sizeof(*e));
		if (!e)
			exit(70);
		if (parse_config(jget(args, "config"), &e->cfg, why)) {
			free(e);
			fail("EINVAL", why);
			return;
		}
		grown = realloc(eps, (size_t)(neps + 1) * sizeof(*eps));
		if (!grown)
			exit(70);
		eps = grown;
		eps[neps++] = e;
		e->server = !strcmp(role, "server");
		e->decline_version = 1;
		if (e->server) {
			e->phase = PH_LISTEN;
			if (!e->cfg.syn_smc) {	/* smc_listen_work */
				e->reason = DECL_PEERNOSMC;
				e->has_reason = 1;
				finish(e, PH_FALLBACK);
			} else {
				e->phase = PH_PROPOSAL_WAIT;
			}
		} else {
			e->phase = PH_INIT;
			client_connect(e);
		}
		hs_answer(e, neps);
		return;
	}
	{
		long long h;

		if (!arg_int(args, "ep", 1, neps, &h)) {
			fail("EBADF", "ep: unknown endpoint");
			return;
		}
		e = eps[h - 1];
	}
	if (!strcmp(op, "hs_feed")) {
		const char *hex = arg_str(args, "data");
		uint8_t *data;
		size_t n;

		if (!hex || !unhex(hex, &data, &n)) {
			fail("EINVAL", "data: expected a hex string");
			return;
		}
		if (!TERMINAL(e->phase)) { /* afterwards the bytes are TCP payload */
			uint8_t *grown = realloc(e->rx, e->rxlen + n + 1);

			if (!grown)
				exit(70);
			e->rx = grown;
			memcpy(e->rx + e->rxlen, data, n);
			e->rxlen += n;
			hs_receive(e);
		}
		free(data);
	} else if (!strcmp(op, "hs_eof")) {
		if (!TERMINAL(e->phase) && !e->eof) {
			e->eof = 1;
			hs_receive(e);
		}
	} else if (!strcmp(op, "hs_timeout")) {
		if (WAITING(e->phase))
			wait_failed(e, 1);
	} else {
		fail("EOPNOTSUPP", "unknown handshake operation");
		return;
	}
	hs_answer(e, 0);
}

void hs_reset(void)
{
	for (int i = 0; i < neps; i++) {
		free(eps[i]->rx);
		free(eps[i]);
	}
	free(eps);
	eps = NULL;
	neps = 0;
	calls_reset();
}
