"""The SMC_CLC_DECL_* codes: names and values as net/smc/smc_clc.h of 6.12.118 defines them."""

from __future__ import annotations

import pytest

from smcd_check.spec.decline import MEANINGS, DeclineCode, decline_code, describe

#: copied by hand from net/smc/smc_clc.h (6.12.118), in file order
KERNEL_CODES = [
    ("MEM", 0x01010000), ("TIMEOUT_CL", 0x02010000), ("TIMEOUT_AL", 0x02020000),
    ("CNFERR", 0x03000000), ("PEERNOSMC", 0x03010000), ("IPSEC", 0x03020000),
    ("NOSMCDEV", 0x03030000), ("NOSMCDDEV", 0x03030001), ("NOSMCRDEV", 0x03030002),
    ("NOISM2SUPP", 0x03030003), ("NOV2EXT", 0x03030004), ("NOV2DEXT", 0x03030005),
    ("NOSEID", 0x03030006), ("NOSMCD2DEV", 0x03030007), ("NOUEID", 0x03030008),
    ("RELEASEERR", 0x03030009), ("MAXCONNERR", 0x0303000A), ("MAXLINKERR", 0x0303000B),
    ("MODEUNSUPP", 0x03040000), ("RMBE_EC", 0x03050000), ("OPTUNSUPP", 0x03060000),
    ("DIFFPREFIX", 0x03070000), ("GETVLANERR", 0x03080000), ("ISMVLANERR", 0x03090000),
    ("NOACTLINK", 0x030A0000), ("NOSRVLINK", 0x030B0000), ("VERSMISMAT", 0x030C0000),
    ("MAX_DMB", 0x030D0000), ("NOROUTE", 0x030E0000), ("NOINDIRECT", 0x030F0000),
    ("SYNCERR", 0x04000000), ("PEERDECL", 0x05000000), ("INTERR", 0x09990000),
    ("ERR_RTOK", 0x09990001), ("ERR_RDYLNK", 0x09990002), ("ERR_REGBUF", 0x09990003),
]


def test_enum_is_exactly_the_kernels_list() -> None:
    assert [(c.name, c.value) for c in DeclineCode] == KERNEL_CODES


@pytest.mark.parametrize(("name", "value"), KERNEL_CODES)
def test_each_code_has_its_kernel_value_and_a_meaning(name: str, value: int) -> None:
    code = DeclineCode[name]
    assert code == value and decline_code(value) is code
    assert code.kernel_name == f"SMC_CLC_DECL_{name}"
    assert code.meaning and MEANINGS[code] == code.meaning
    assert describe(value).startswith(f"SMC_CLC_DECL_{name}: ")


def test_the_loopback_decline_codes() -> None:
    assert DeclineCode.NOUEID == 0x03030008
    assert describe(0x03030008) == "SMC_CLC_DECL_NOUEID: peer sent no UEID"


@pytest.mark.parametrize("value", [0, 0x02000000, 0x06000000, 0x99990000, 0xFFFFFFFF])
def test_unknown_and_pre_v5_codes_read_unknown(value: int) -> None:
    """v4.x codes (TIMEOUT, REPLY, old INTERR) are other numbers and must not be named."""
    assert decline_code(value) is None and describe(value) == "unknown"


def test_old_ipsec_value_now_means_nosmcdev() -> None:
    assert decline_code(0x03030000) is DeclineCode.NOSMCDEV
