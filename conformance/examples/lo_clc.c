/*
 * lo_clc.c - the CLC codec of the C example target (conformance/PROTOCOL.md section 7,
 * capability clc): a message checked as the kernel checks it on receipt (net/smc/smc_clc.c
 * smc_clc_wait_msg, smc_clc_msg_hdr_valid, smc_clc_msg_prop_valid, smc_clc_msg_acc_conf_valid,
 * smc_clc_msg_decl_valid) and clc_decode's answer.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lo_clc.h"
#include "lo_target.h"

const uint8_t EYE_R[4] = {0xe2, 0xd4, 0xc3, 0xd9};
const uint8_t EYE_D[4] = {0xe2, 0xd4, 0xc3, 0xc4};

/* ====================================================================== decoding (section 7) */

void msg_free(struct clc_msg *m)
{
	free(m->buf);
	m->buf = NULL;
}

#define BAD(text) do { snprintf(why, 160, "%s", text); return -1; } while (0)

/*
 * Check one message as smc_clc_wait_msg does: data holds exactly n bytes; check_trl is false
 * when the message is longer than the receive buffer (the kernel never reads its trailer).
 * Returns 0 with m filled (free with msg_free), or -1 with why naming the rule.
 */
int clc_check(const uint8_t *data, size_t n, int check_trl, struct clc_msg *m, char *why)
{
	size_t length, want, blen;
	const uint8_t *buf;

	memset(m, 0, sizeof(*m));
	if (n < HDR_LEN)
		BAD("header: fewer than 8 bytes (smc_clc_wait_msg)");
	if (!is_eye(data))
		BAD("hdr.eyecatcher: neither SMCR nor SMCD (smc_clc_msg_hdr_valid)");
	m->type = data[4];
	if (m->type < 1 || m->type > 4)
		BAD("hdr.type: not 1..4 (smc_clc_msg_hdr_valid)");
	m->version = data[7] >> 4;
	m->typev2 = (data[7] >> 2) & 3;
	m->typev1 = data[7] & 3;
	if (m->version < 1)
		BAD("hdr.version: 0 (smc_clc_wait_msg)");
	length = be16(data + 5);
	m->length = n;

	if (m->type == CLC_DECLINE) { /* smc_clc_msg_decl_valid; the trailer is never checked */
		want = m->version == 1 ? 28 : 44;
		if (length != want)
			BAD("hdr.length: 28 for a v1 Decline, 44 for v2 (smc_clc_msg_decl_valid)");
		if (n != length)
			BAD("hdr.length: not the bytes given");
		m->peer_diagnosis = be32(data + 16);
		m->os_type = data[20] >> 4;
		m->out_of_sync = !!(m->typev2 & 2);
		return 0;
	}
	if (m->type == CLC_ACCEPT || m->type == CLC_CONFIRM) { /* smc_clc_msg_acc_conf_valid */
		int is_d = m->typev1 == T_D;

		if (m->typev1 != T_R && m->typev1 != T_D)
			BAD("hdr.typev1: R or D in an Accept/Confirm");
		if (m->version == 1) {
			if (length != (size_t)(is_d ? 48 : 68))
				BAD("hdr.length: 48 for a v1 SMC-D Accept/Confirm (68 SMC-R)");
		} else if (length < (size_t)(is_d ? 78 : 108)) {
			BAD("hdr.length: at least 78 for a v2 SMC-D Accept/Confirm (108 SMC-R)");
		}
		if (n != length)
			BAD("hdr.length: not the bytes given");
		if (check_trl && !is_eye(data + length - TRL_LEN))
			BAD("trl.eyecatcher: neither SMCR nor SMCD (smc_clc_msg_hdr_valid)");
		m->first_contact = !!(m->typev2 & 2);
		blen = length > ACCEPT_BUF ? length : ACCEPT_BUF;
		m->buf = calloc(1, blen + PROP_AREA);
		if (!m->buf)
			BAD("out of memory");
		memcpy(m->buf, data, length);
		if (!is_d)
			return 0;
		m->gid = be64(data + 8);
		m->token = be64(data + 16);
		m->dmbe_idx = data[24];
		m->dmbe_size = data[25] >> 4;
		memcpy(m->linkid, data + 28, 4);
		if (m->version == 1)
			return 0;
		m->chid = be16(data + 32);
		memcpy(m->eid, data + 34, EID_LEN);
		m->gid_ext = be64(data + 66);
		return 0;
	}

	/* Proposal: smc_clc_msg_prop_valid, read from the zeroed 652-byte area */
	{
		int v2 = m->version != 1;
		int ipoff, cnt, v2_at = -1, sd_at, prefix_size;
		size_t minimum = v2 ? PROP_BASE + PROP_SMCD + TRL_LEN : PROP_BASE + PRFX_LEN + TRL_LEN;
		uint8_t *b;

		if (length < minimum)
			BAD("hdr.length: shorter than the smallest Proposal (smc_clc_msg_prop_valid)");
		if (n != length)
			BAD("hdr.length: not the bytes given");
		blen = length > PROP_AREA ? length : PROP_AREA;
		b = m->buf = calloc(1, blen + PROP_AREA);
		if (!b)
			BAD("out of memory");
		memcpy(b, data, length);
		buf = b;
		ipoff = be16(buf + 38);
		m->iparea_offset = ipoff;
		if (ipoff > PROP_SMCD)
			BAD("iparea_offset: > 40 (smc_clc_proposal_get_prefix returns NULL)");
		cnt = buf[PROP_BASE + ipoff + 7];
		if (cnt > MAX_V6_PREFIX)
			BAD("pclc_prfx.ipv6_prefixes_cnt: > 8");
		prefix_size = PRFX_LEN + IPV6_PRFX * cnt;
		if (!v2) {
			if (m->typev1 == T_N)
				BAD("hdr.typev1: N in a v1 Proposal");
			want = (size_t)(PROP_BASE + ipoff + prefix_size + TRL_LEN);
		} else {
			if (m->typev2 != T_N) {
				int v2off;

				if (SMCD(m->typev1) && ipoff != PROP_SMCD)
					BAD("iparea_offset: 40 when typev1 offers SMC-D "
					    "(smc_get_clc_msg_smcd)");
				v2off = be16(buf + 50);
				if (v2off < 1 || v2off > V2_EXT_OFF_MAX)
					BAD("pclc_smcd.v2_ext_offset: 1..172 when typev2 != N "
					    "(smc_get_clc_v2_ext)");
				v2_at = 52 + v2off;
				m->eid_cnt = buf[v2_at];
				m->gid_cnt = buf[v2_at + 1];
				if (m->eid_cnt > MAX_UEID_RX)
					BAD("pclc_v2_ext.hdr.eid_cnt: > 8");
				if (SMCD(m->typev2) && m->gid_cnt > MAX_GID_ENTRIES)
					BAD("pclc_v2_ext.hdr.ism_gid_cnt: > 8");
			}
			want = PROP_BASE + PROP_SMCD + (m->typev1 != T_N ? (size_t)prefix_size : 0) +
			       (m->typev2 != T_N ? (size_t)(V2_EXT + EID_LEN * m->eid_cnt) : 0) +
			       (SMCD(m->typev2) ? (size_t)(SMCD_V2_EXT + GIDCHID * m->gid_cnt) : 0) +
			       TRL_LEN;
		}
		if (length != want)
			BAD("hdr.length: not the sum of the parts the header and counts announce");
		if (check_trl && !is_eye(data + length - TRL_LEN))
			BAD("trl.eyecatcher: neither SMCR nor SMCD (smc_clc_msg_hdr_valid)");
		if (v2 || ipoff == PROP_SMCD) {
			m->has_smcd = 1;
			m->ism_gid = be64(buf + 40);
			m->ism_chid = be16(buf + 48);
			m->v2_ext_offset = be16(buf + 50);
		}
		if (m->typev1 != T_N) {
			const uint8_t *p = buf + PROP_BASE + ipoff;

			m->has_prefix = 1;
			memcpy(m->subnet, p, 4);
			m->prefix_len = p[4];
			m->ipv6_cnt = cnt;
		}
		if (v2_at >= 0) {
			int sdoff = be16(buf + v2_at + 6);

			m->has_v2 = 1;
			m->release = buf[v2_at + 3] >> 4;
			m->seid = buf[v2_at + 3] & 1;
			m->max_conns = buf[v2_at + 24];
			m->max_links = buf[v2_at + 25];
			m->eids = buf + v2_at + V2_EXT;
			if (SMCD(m->typev2) && sdoff >= 1 && sdoff <= SMCD_V2_EXT_OFF_MAX) {
				sd_at = v2_at + 8 + sdoff;
				m->has_smcd_v2 = 1;
				m->system_eid = buf + sd_at;
				for (int i = 0; i < m->gid_cnt; i++) {
					const uint8_t *q = buf + sd_at + SMCD_V2_EXT + GIDCHID * i;

					m->gidchids[i].gid = be64(q);
					m->gidchids[i].chid = be16(q + 8);
				}
			}
		}
		return 0;
	}
}

static void out_bool(const char *key, int v) { out("\"%s\":%s", key, v ? "true" : "false"); }

void op_clc_decode(struct jval *args)
{
	const char *hex = arg_str(args, "data");
	uint8_t *data;
	size_t n;
	struct clc_msg m;
	char why[160];

	if (!hex || !unhex(hex, &data, &n)) {
		fail("EINVAL", "data: expected a hex string");
		return;
	}
	if (clc_check(data, n, 1, &m, why)) {
		free(data);
		msg_free(&m);
		fail("EPROTO", why);
		return;
	}
	ok_begin();
	out("\"type\":%d,\"version\":%d,\"length\":%zu,\"fields\":{", m.type, m.version, n);
	if (m.type == CLC_PROPOSAL) {
		out("\"iparea_offset\":%d,", m.iparea_offset);
		if (m.has_smcd)
			out("\"ism_gid\":%llu,\"ism_chid\":%u,\"v2_ext_offset\":%u,",
			    (unsigned long long)m.ism_gid, m.ism_chid, m.v2_ext_offset);
		else
			out("\"ism_gid\":null,\"ism_chid\":null,\"v2_ext_offset\":null,");
		if (m.has_prefix)
			out("\"ipv6_prefixes_cnt\":%d,", m.ipv6_cnt);
		else
			out("\"ipv6_prefixes_cnt\":null,");
		if (m.has_v2) {
			out("\"eid_cnt\":%d,\"ism_gid_cnt\":%d,\"release\":%d,", m.eid_cnt, m.gid_cnt,
			    m.release);
			out_bool("seid", m.seid);
		} else {
			out("\"eid_cnt\":null,\"ism_gid_cnt\":null,\"release\":null,\"seid\":null");
		}
		if (m.has_smcd_v2) {
			out(",\"gidchids\":[");
			for (int i = 0; i < m.gid_cnt; i++)
				out("%s[%llu,%u]", i ? "," : "", (unsigned long long)m.gidchids[i].gid,
				    m.gidchids[i].chid);
			out("]");
		} else {
			out(",\"gidchids\":null");
		}
	} else if (m.type == CLC_DECLINE) {
		out("\"peer_diagnosis\":%lu,", (unsigned long)m.peer_diagnosis);
		out_bool("out_of_sync", m.out_of_sync);
		out(",\"os_type\":%d", m.os_type);
	} else {
		out_bool("first_contact", m.first_contact);
		out(",\"gid\":%llu,\"token\":%llu,\"dmbe_idx\":%d,\"dmbe_size\":%d,\"linkid\":\"",
		    (unsigned long long)m.gid, (unsigned long long)m.token, m.dmbe_idx, m.dmbe_size);
		out_hex(m.linkid, 4);
		out("\",\"chid\":%u,\"gid_ext\":%llu,\"eid\":\"", m.chid,
		    (unsigned long long)m.gid_ext);
		out_hex(m.eid, EID_LEN);
		out("\"");
	}
	out("}");
	ok_end();
	free(data);
	msg_free(&m);
}
