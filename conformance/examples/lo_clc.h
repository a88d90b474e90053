/*
 * lo_clc.h - the CLC wire format (conformance/PROTOCOL.md section 7) shared by the codec
 * (lo_clc.c) and the handshake endpoints (lo_hs.c): sizes and offsets of net/smc/smc_clc.h,
 * the decoded view of one message, and big-endian byte helpers.
 */
#ifndef LO_CLC_H
#define LO_CLC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>


#define HDR_LEN 8
#define TRL_LEN 4
#define PROP_BASE 40		/* struct smc_clc_msg_proposal */
#define PROP_SMCD 40		/* struct smc_clc_msg_smcd */
#define PRFX_LEN 8		/* struct smc_clc_msg_proposal_prefix */
#define IPV6_PRFX 17
#define V2_EXT 40		/* struct smc_clc_v2_extension, fixed part */
#define SMCD_V2_EXT 48		/* struct smc_clc_smcd_v2_extension, fixed part */
#define GIDCHID 10
#define EID_LEN 32
#define MAX_V6_PREFIX 8		/* SMC_CLC_MAX_V6_PREFIX */
#define MAX_UEID_RX 8		/* SMC_CLC_MAX_UEID */
#define MAX_GID_ENTRIES 8	/* SMCD_CLC_MAX_V2_GID_ENTRIES */
#define MAX_UEID_TABLE 4	/* SMC_MAX_UEID: the local table */
#define PROP_AREA 652		/* struct smc_clc_msg_proposal_area: server receive buffer */
#define ACCEPT_BUF 160		/* SMC_CLC_MAX_ACCEPT_LEN: client receive buffer */
#define V2_EXT_OFF_MAX 172	/* smc_get_clc_v2_ext */
#define SMCD_V2_EXT_OFF_MAX 288	/* smc_get_clc_smcd_v2_ext */
#define FCE_OFF 74
#define FCE_LEN 36
#define FCE_V2X_LEN 52

enum { T_R = 0, T_D = 1, T_N = 2, T_B = 3 };	/* SMC_TYPE_* */
enum { CLC_PROPOSAL = 1, CLC_ACCEPT = 2, CLC_CONFIRM = 3, CLC_DECLINE = 4 };

#define SMCD(t) ((t) == T_D || (t) == T_B)
#define SMCR(t) ((t) == T_R || (t) == T_B)

extern const uint8_t EYE_R[4];	/* "SMCR" in EBCDIC */
extern const uint8_t EYE_D[4];	/* "SMCD" */

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static inline void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

static inline int is_eye(const uint8_t *p) { return !memcmp(p, EYE_R, 4) || !memcmp(p, EYE_D, 4); }
static inline int emulated(uint16_t chid) { return (chid & 0xFF00) == 0xFF00; }


struct gidchid {
	uint64_t gid;
	uint16_t chid;
};

struct clc_msg {
	int type, version, typev2, typev1;
	size_t length;
	/* Proposal */
	int iparea_offset;
	int has_smcd;		/* the SMC-D area is there (v2, or iparea_offset 40) */
	uint64_t ism_gid;
	uint16_t ism_chid, v2_ext_offset;
	int has_prefix;
	uint8_t subnet[4];
	int prefix_len, ipv6_cnt;
	int has_v2;		/* the v2 extension */
	int eid_cnt, gid_cnt, release, seid, max_conns, max_links;
	const uint8_t *eids;	/* eid_cnt * 32 bytes, inside buf */
	int has_smcd_v2;	/* the SMC-Dv2 extension (offset 1..288) */
	const uint8_t *system_eid;
	struct gidchid gidchids[256];
	/* Accept / Confirm */
	int first_contact;
	uint64_t gid, token, gid_ext;
	int dmbe_idx, dmbe_size;
	uint8_t linkid[4];
	uint16_t chid;
	uint8_t eid[EID_LEN];
	/* Decline */
	uint32_t peer_diagnosis;
	int out_of_sync, os_type;
	/* the kernel's receive buffer: the message zero padded (at least PROP_AREA bytes) */
	uint8_t *buf;
};

/* Check one message as smc_clc_wait_msg does (PROTOCOL.md section 7): data holds exactly n
 * bytes; check_trl is false when the message is longer than the receive buffer. Returns 0
 * with m filled (release with msg_free), or -1 with why (160 bytes) naming the rule. */
int clc_check(const uint8_t *data, size_t n, int check_trl, struct clc_msg *m, char *why);
void msg_free(struct clc_msg *m);

#endif
