"""HJ 212 code tables as data: pollutant codes, data flags, command codes, answer codes.

Each table is a dict a user can read (and extend in one place); the gateway never branches on a code
with ``elif``. Source: HJ 212-2017 *Data transmission standard for online monitoring systems of
pollutant* (MEE, 2017): its water pollutant codes (``w`` codes, after HJ 525), data flags (数据标记),
command codes (CN, 命令编码), system codes (ST) and answer codes (QnRtn). We worked from the
standard's tables as quoted by public implementations, not from its PDF, so no section or table
numbers are cited. Where HJ 212-2025 differs it is noted (see ``protocol``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class PollutantCode:
    """One HJ 212 pollutant code as rivertrace stores it.

    Parameters
    ----------
    parameter : str
        rivertrace's canonical parameter (``tracer.readings.canonical_parameter``).
    unit : str
        Unit in which HJ 212 transmits the instantaneous and average values (its code table);
        converted to the internal SI unit by the same table as gRPC ingest (``tracer.readings.UNITS``).
    name_zh : str
        The standard's name of the item.
    """

    parameter: str
    unit: str
    name_zh: str


#: HJ 212-2017 water codes -> rivertrace parameter and transmitted unit. The flow code
#: ``w00000`` (污水, sewage/effluent flow) is transmitted in L/s for Rtd/Avg (its Cou is a volume in
#: m3, which rivertrace does not store).
POLLUTANTS: Final = MappingProxyType({
    "w01009": PollutantCode("DO", "mg/L", "溶解氧"),
    "w21003": PollutantCode("NH3-N", "mg/L", "氨氮"),
    "w01018": PollutantCode("COD", "mg/L", "化学需氧量"),
    "w01019": PollutantCode("CODMn", "mg/L", "高锰酸盐指数"),
    "w21011": PollutantCode("TP", "mg/L", "总磷"),
    "w21001": PollutantCode("TN", "mg/L", "总氮"),
    "w01010": PollutantCode("temperature", "degC", "水温"),
    "w01001": PollutantCode("pH", "1", "pH值"),
    "w22001": PollutantCode("petroleum", "mg/L", "石油类"),
    "w01017": PollutantCode("BOD5", "mg/L", "五日生化需氧量"),
    "w01014": PollutantCode("conductivity", "uS/cm", "电导率"),
    "w00000": PollutantCode("discharge", "L/s", "污水"),
})

#: HJ 212 data flag (``xxxxxx-Flag``) -> rivertrace quality flag (None: a normal reading, stored
#: without a flag as gRPC readings without one are). The rivertrace names are those of
#: :data:`tracer.readings.QUALITY_FLAGS`.
DATA_FLAGS: Final = MappingProxyType({
    "N": None,               # 在线监控（监测）仪器仪表工作正常: normal
    "F": "stopped",          # 仪器仪表停运: instrument stopped
    "M": "maintenance",      # 仪器仪表处于维护期间产生的数据: during maintenance
    "S": "manual",           # 手工输入的设定值: a value entered by hand
    "D": "fault",            # 仪器仪表故障: instrument fault
    "C": "calibration",      # 仪器仪表处于校准状态: during calibration
    "T": "over_range",       # 仪器仪表采样数值超过测量上限: above the measuring range (the true value is higher)
    "B": "comm_error",       # 仪器仪表与数采仪通讯异常: link between analyser and data logger failed
})

#: upload commands that carry measured values, and the field of each code that holds the value:
#: real-time (Rtd, instantaneous) or the average of the interval (Avg)
DATA_COMMANDS: Final = MappingProxyType({
    "2011": "Rtd",  # 上传污染物实时数据: real-time data
    "2051": "Avg",  # 上传污染物分钟数据: minute data
    "2061": "Avg",  # 上传污染物小时数据: hourly data
    "2031": "Avg",  # 上传污染物日历史数据: daily data
})

#: upload commands that carry treatment-facility states: running state SBx-RS (2021) and daily
#: running time SBx-RT in hours (2041)
STATE_COMMANDS: Final = frozenset({"2021", "2041"})

#: SBx-RS value -> treatment facility running (True) or stopped (False); 0 and 1 are the standard's
#: 关闭/运行. Other values (2-5: calibration, maintenance, alarm, back-flushing as implementations
#: commonly use them) carry no on/off meaning for the evidence and are skipped (counted).
RUNNING_STATES: Final = MappingProxyType({"0": False, "1": True})

#: answers the gateway sends (host -> field unit)
CN_REQUEST_ANSWER: Final = "9011"    # 请求应答 (QnRtn)
CN_EXECUTION_RESULT: Final = "9012"  # 执行结果 (ExeRtn)
CN_NOTICE_ANSWER: Final = "9013"     # 通知应答
CN_DATA_ANSWER: Final = "9014"       # 数据应答
#: heartbeat (HJ 212-2025 only): the field unit keeps a connection alive; answered with 9013
CN_HEARTBEAT: Final = "9015"
#: system code of the answers: 91 系统交互
ST_SYSTEM: Final = "91"

#: QnRtn (answer to a request, CN 9011) by reason
QN_RTN: Final = MappingProxyType({
    "ready": 1,         # 准备执行请求
    "refused": 2,       # 请求被拒绝
    "password": 3,      # PW 错误
    "mn": 4,            # MN 错误
    "st": 5,            # ST 错误
    "flag": 6,          # Flag 错误
    "qn": 7,            # QN 错误
    "cn": 8,            # CN 错误
    "crc": 9,           # CRC 校验错误
    "unknown": 100,     # 未知错误
})

#: ST system codes (HJ 212-2017 系统编码) the gateway accepts: water quality, water pollution sources,
#: system interaction. Others (air, noise...) are refused with QnRtn 5.
SYSTEM_CODES: Final = MappingProxyType({
    "21": "地表水质量监测 (surface water quality)",
    "24": "地下水质量监测 (groundwater quality)",
    "26": "海水质量监测 (sea water quality)",
    "32": "地表水体环境污染源 (surface-water pollution source)",
    "33": "地下水体环境污染源 (groundwater pollution source)",
    "34": "海洋环境污染源 (marine pollution source)",
    "91": "系统交互 (system interaction)",
})

#: Flag version bits (V5..V0 of Flag) -> standard
VERSIONS: Final = MappingProxyType({0: "HJ/T 212-2005", 1: "HJ 212-2017", 2: "HJ 212-2025"})
