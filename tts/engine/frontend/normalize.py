"""Chinese text normalisation: digits, symbols and units -> speakable hanzi.

Two layers:

1. Our own rules, applied first, for the things a customer-service voice must
   get right and general-purpose normalisers get wrong: phone numbers,
   hotlines, verification codes, order numbers and account tails are read digit
   by digit; money, discounts, times, ranges and a few units are read the way
   an agent would say them. Wider readings are table-driven (units, currencies,
   measure words, weekdays): signed numbers and temperatures (零下五摄氏度),
   ranges written with - ~ ～ 至 到 (the sign becomes 到, then each side is read
   by its own rule), products (乘), letter+digit codes (flight, train, model
   numbers read digit by digit), +86 numbers and extensions (转), currency
   symbols or codes on either side of the amount, per-unit prices (元每月).
2. wetext (the WeTextProcessing FST runtime, shipped offline with its FSTs) for
   everything else that still contains a digit (plain numbers, decimals,
   fractions, dates in odd formats, most units).

Digit-by-digit rule: in every code-like number (phones, hotlines, codes, order
and tracking numbers, account tails, any run of 7+ digits) 1 is read 幺 and 0
is read 零, as Chinese call centres do, so that 1 and 7 are not confused.
Years (二零二四年) are read digit by digit with 一, as people say them.

wetext's FST composition is linear in input length but slow on long text
(~0.2 ms per character), so it only ever sees small windows around the
digits that our rules left behind.
"""

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable

import cn2an

from ._logonce import log_once, logger

_DIGIT_YAO = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))
_DIGIT_YI = dict(zip("0123456789", "零一二三四五六七八九", strict=True))

_NUM = r"\d+(?:\.\d+)?"


def _rx(pattern: str) -> re.Pattern[str]:
    # ASCII: \d must not match Arabic-Indic or other Unicode digits, which
    # cn2an cannot read; such digits are left for the G2P step to skip.
    return re.compile(pattern, re.ASCII)


def read_digits(digits: str, *, yao: bool = True) -> str:
    """Read a digit string digit by digit; non-digits are dropped."""
    table = _DIGIT_YAO if yao else _DIGIT_YI
    return "".join(table[c] for c in digits if c in table)


def read_number(num: str, *, liang: bool = False) -> str:
    """Read an integer or decimal as a cardinal number ("199.5" -> 一百九十九点五).

    ``liang`` reads a bare 2 as 两, as before measure words and units (两天, 两点).
    """
    num = num.replace(",", "")
    if "." in num:
        whole, frac = num.split(".", 1)
    else:
        whole, frac = num, ""
    whole = whole.lstrip("0") or "0"
    if liang and whole == "2" and not frac:
        return "两"
    # cn2an is exact for integers; the fraction is always read digit by digit.
    try:
        spoken = cn2an.an2cn(whole) if len(whole) <= 16 else read_digits(whole, yao=False)
    except Exception:  # cn2an rejects odd input with its own errors: never fail here
        spoken = read_digits(whole, yao=False)
    if frac:
        spoken += "点" + read_digits(frac, yao=False)
    return spoken


def _money_amount(num: str) -> str:
    # ¥1,299.00 is said "一千二百九十九元", ¥199.50 "一百九十九点五元".
    num = num.replace(",", "")
    if "." in num:
        num = num.rstrip("0").rstrip(".")
    return read_number(num)


# --- code-like numbers ------------------------------------------------------

_CODE_KEYWORDS = (
    "验证码|校验码|动态码|安全码|密码|取件码|提货码|取餐码|兑换码|邀请码|激活码|"
    "订单编号|订单号|运单号|快递单号|物流单号|单号|编号|工号|账号|帐号|卡号|尾号|"
    "会员号|客户号|房间号|手机号码|手机号|电话号码|号码|手机|电话|热线|座机|分机号|分机|"
    "拨打|致电|呼叫|联系|微信号|QQ"
)
_CODE = _rx(
    rf"({_CODE_KEYWORDS})((?:是|为|:|：|\s)*)"
    r"((?:\+?86[- ]?)?[0-9A-Za-z](?:[0-9A-Za-z]|[- ](?=[0-9A-Za-z])){2,})"
)
_MOBILE = _rx(r"(?<![0-9])(\+?86[- ]?)?(1[3-9][0-9](?:[0-9]{8}|[- ][0-9]{4}[- ][0-9]{4}))(?![0-9])")
_HOTLINE = _rx(r"(?<![0-9])([48]00)[- ]?([0-9]{3})[- ]?([0-9]{4})(?![0-9])")
_LANDLINE = _rx(r"(?<![0-9])\(?(0[0-9]{2,3})\)?[- ]?([0-9]{7,8})(?![0-9])")
# 7+ digits that are not an amount are identifiers (order numbers, tracking
# numbers, card numbers): nobody says them as a cardinal.
_LONG_DIGITS = _rx(
    r"(?<![0-9.])[0-9]{7,}(?![0-9.]|\s*(?:元|块|美元|万|亿|%|个|件|人|次|米|千克|公斤))"
)


def _read_code(code: str) -> str:
    """Read a code, phone number or ID: digits one by one, letters kept.

    Group separators (space, hyphen) become a comma so the voice pauses there,
    and an 11-digit mobile number is grouped 3-4-4 the way it is dictated.
    """
    out = []
    code = code.strip()
    if code.startswith("+86"):
        out.append("加八六，")
        code = code[3:].lstrip(" -")
    elif re.match(r"86[- ]", code):
        out.append("八六，")
        code = code[3:]
    if re.fullmatch(r"1[3-9][0-9]{9}", code):
        code = f"{code[:3]} {code[3:7]} {code[7:]}"
    elif re.fullmatch(r"[48]00[0-9]{7}", code):
        code = f"{code[:3]} {code[3:6]} {code[6:]}"
    for ch in code:
        if ch.isdigit():
            out.append(_DIGIT_YAO.get(ch, ""))
        elif ch in " -":
            out.append("，")
        else:
            out.append(ch)
    return "".join(out)


def _sub_code(m: re.Match[str]) -> str:
    return m.group(1) + m.group(2) + _read_code(m.group(3))


def _sub_mobile(m: re.Match[str]) -> str:
    return _read_code((m.group(1) or "") + m.group(2))


def _sub_groups(m: re.Match[str]) -> str:
    return "，".join(read_digits(g) for g in m.groups())


# --- amounts, dates, times ------------------------------------------------

_CURRENCY_PREFIX = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}
# "¥199.5元" is common too: the redundant 元 is swallowed.
_MONEY_PREFIX = _rx(r"([¥￥$€£])\s*(-?\d+(?:,\d{3})*(?:\.\d+)?)\s*(万|亿)?(?:\s*元(?!/))?")
_MONEY_SUFFIX = _rx(r"(?<![\d.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(元|块钱|块|RMB|rmb|CNY)")
_THOUSANDS = _rx(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")

_DATE_YMD = _rx(r"(?<![\d.])(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?![\d.])")
_YEAR = _rx(r"(?<![\d.])(\d{2}|\d{4})\s*年")
_MONTH_DAY = _rx(r"(?<![\d.])(\d{1,2})\s*月\s*(?:(\d{1,2})\s*(日|号))?")
_DAY = _rx(r"(?<![\d.])(\d{1,2})\s*(日|号)(?!码)")
_CLOCK = _rx(r"(?<![\d.:])(\d{1,2})\s*[:：]\s*(\d{2})(?:\s*[:：]\s*(\d{2}))?(?![\d.:])")
_HOUR = _rx(r"(?<![\d.])(\d{1,2})\s*点(?![0-9])")

_PERCENT_RANGE = _rx(rf"({_NUM})\s*%?\s*[-~～–—]\s*({_NUM})\s*%")
_PERCENT = _rx(rf"({_NUM})\s*%")
_PERMILLE = _rx(rf"({_NUM})\s*‰")
_DISCOUNT_DECIMAL = _rx(r"(?<![\d.])(\d)\.(\d)\s*折")
_DISCOUNT = _rx(r"(?<![\d.])(\d{1,2})\s*折")
_RANGE = _rx(rf"(?<![\d.:/-])({_NUM})\s*[-~～–—]\s*({_NUM})(?![\d.:/]|-\d)")

# Units wetext leaves in Latin letters or misreads; the key is matched
# case-sensitively except where both cases are listed. Byte sizes keep their
# letters (二百五十六GB is how people say it); the number is still ours.
_UNITS = {
    "kg": "千克", "KG": "千克", "Kg": "千克", "g": "克", "mg": "毫克", "μg": "微克", "t": "吨",
    "km": "公里", "KM": "公里", "cm": "厘米", "mm": "毫米", "m": "米", "nm": "纳米",
    "ml": "毫升", "mL": "毫升", "ML": "毫升", "L": "升", "l": "升", "cc": "毫升",
    "mAh": "毫安时", "kWh": "千瓦时", "kW": "千瓦", "W": "瓦", "V": "伏",
    "℃": "摄氏度", "°C": "摄氏度", "℉": "华氏度", "°F": "华氏度", "°": "度",
    "m²": "平方米", "㎡": "平方米", "cm²": "平方厘米", "km²": "平方公里",
    "m³": "立方米", "km/h": "公里每小时", "m/s": "米每秒",
    "KB": "KB", "MB": "MB", "GB": "GB", "TB": "TB", "kB": "KB",
    "Mbps": "兆比特每秒", "Gbps": "吉比特每秒", "G": "G",
    "Hz": "赫兹", "kHz": "千赫兹", "MHz": "兆赫兹", "GHz": "吉赫兹",
    "dB": "分贝", "ms": "毫秒", "min": "分钟", "h": "小时",
    "kcal": "千卡", "px": "像素", "inch": "英寸", "mmHg": "毫米汞柱",
}  # fmt: skip
_UNIT = _rx(
    rf"(?<![\d.A-Za-z])({_NUM})\s*("
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?![A-Za-z0-9])"
)

# --- wider number reading: signs, ranges, products, codes, currencies ------------

_SEP = r"[-~～–—]"  # range separators written between two quantities
# Words after which a bare 2 is read 两 (两到三人, 一到两小时).
_MEASURE = (
    "小时|分钟|个|人|次|件|天|周|位|台|份|张|本|瓶|盒|箱|袋|双|只|条|家|间|座|辆|趟|层|岁|倍|"
    "公斤|千克|斤|克|米|公里|升|毫升|元|块|万|千|百"
)
_CURRENCY_CODES = {
    "RMB": "元", "rmb": "元", "CNY": "元", "USD": "美元", "US$": "美元", "HK$": "港元",
    "HKD": "港元", "EUR": "欧元", "GBP": "英镑", "JPY": "日元", "¥": "元", "￥": "元",
    "$": "美元", "€": "欧元", "£": "英镑",
}  # fmt: skip
_CURRENCY_ALT = "|".join(re.escape(c) for c in sorted(_CURRENCY_CODES, key=len, reverse=True))
_AMOUNT = r"\d+(?:,\d{3})*(?:\.\d+)?"
_WEEKDAY = {"1": "一", "2": "二", "3": "三", "4": "四", "5": "五", "6": "六", "7": "日"}
# What may follow "/" to make it "per": 99元/月 -> 九十九元每月.
_PER = (
    "月|天|日|年|晚|人|次|件|个|位|台|份|瓶|盒|斤|公斤|千克|小时|分钟|周|张|平方米|平米|"
    "kg|km|g|h|L|ml|m²|㎡|m"
)

# Two years joined by a range sign: 2024-2025年 -> 二零二四到二零二五年.
_YEAR_RANGE = _rx(
    rf"(?<![\d.])((?:19|20)\d{{2}})\s*(年?)\s*(?:{_SEP}|至|到)\s*((?:19|20)\d{{2}})"
    r"(?=\s*(?:年|赛季|学年|财年|年度))"
)
# One currency for both ends: ¥100-200, ¥100~¥200, $5-$10 -> 一百到二百元.
_MONEY_RANGE = _rx(
    rf"({_CURRENCY_ALT})\s*({_AMOUNT})\s*(?:{_SEP}|至|到)\s*(?:\1)?\s*({_AMOUNT})(?:\s*元)?"
)
# A currency code or symbol before the amount (RMB 100, USD 20, HK$50) or after it
# (199¥, 20 USD): always said after the number.
_CURRENCY_BEFORE = _rx(
    rf"(?<![A-Za-z])(RMB|rmb|CNY|USD|US\$|HK\$|HKD|EUR|GBP|JPY)\s*(-?{_AMOUNT})\s*(万|亿)?"
)
_CURRENCY_AFTER = _rx(rf"(?<![\d.])({_AMOUNT})\s*(万|亿)?\s*(USD|HKD|EUR|GBP|JPY|[¥￥€£])(?!\s*\d)")
# Weekdays: 周1 -> 周一, 星期7 -> 星期日; ranges of them.
_WEEKDAY_DIGIT = _rx(r"(周|星期|礼拜)([1-7])(?![\d.])")
_WEEKDAY_RANGE = _rx(
    rf"(周|星期|礼拜)([一二三四五六日天])\s*{_SEP}\s*(周|星期|礼拜)?([一二三四五六日天])"
)
# Two quantities joined by a range sign: the sign becomes 到 and both sides
# are read by the rules that follow (times, dates, units, amounts). A side
# glued to a letter is a code (A12-3456), not a range.
_RANGE_SIGN = _rx(
    r"(?<![\w.:/])([-+]?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*[:：]\s*\d{2})?"
    r"\s*(?:[%‰℃点日号月时分秒元天周岁度个件人次倍万亿]|°C|[A-Za-z]{1,4}(?![A-Za-z]))?)"
    rf"\s*{_SEP}\s*"
    r"(?=[-+]?[¥￥$€£]?\d+(?:[.,:：]\d+)*(?!\d|\s*-\s*\d))"
)
# A minus sign in front of a temperature: -5℃, -5到3℃ -> 零下五...
_TEMPERATURE_AHEAD = rf"(?=({_NUM})\s*(?:℃|°C|°|度|到\s*-?{_NUM}\s*(?:℃|°C|度)))"
_BELOW_ZERO = _rx(rf"(?:零下\s*-|(?<![\w.])-){_TEMPERATURE_AHEAD}")
_ABOVE_ZERO = _rx(rf"(?<![\w.])\+{_TEMPERATURE_AHEAD}")
# A plus sign in front of any other number: +5 -> 正五, 涨了+15% -> 涨了正百分之十五.
_PLUS = _rx(r"(?<![\w.)）])\+(?=\d)")
# Any other minus sign in front of a number: -3.5 -> 负三点五, -10% -> 负百分之十.
_MINUS = _rx(r"(?<![\w.,:/)）%‰℃$¥￥€£])[-−](?=\d)")
# Products and sizes: 2x3米, 30×20×10cm, 3*4 -> 乘.
_TIMES_FACTOR = (
    rf"{_NUM}(?:\s*(?:"
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?![A-Za-z]))?"
)
_TIMES = _rx(rf"(?<![\w.])({_TIMES_FACTOR})((?:\s*[x×X*＊]\s*{_TIMES_FACTOR})+)(?![\d.])")
_TIMES_SPLIT = _rx(r"\s*[x×X*＊]\s*")
_FACTOR = _rx(rf"({_NUM})\s*(.*)")
# Letters then 3+ digits: flight, train and model numbers, rooms -> digit by digit.
_LETTER_CODE = _rx(r"(?<![A-Za-z0-9])([A-Z]{1,3})(\d{3,})(?![\d.])")
# Dotted version numbers and addresses: 3.1.2, 192.168.1.1.
_DOTTED = _rx(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.])")
# Telephone extension after a number we already read: ...转123 -> 转幺二三.
_EXTENSION = _rx(r"(?<=[零幺二三四五六七八九])\s*(转|分机)\s*(\d{1,6})(?![\d.])")
# International numbers written with a country code and groups: +86 138 1234 5678.
_INTL_PHONE = _rx(r"(?<![\w+])\+(86|\d{1,3})[- ]((?:\d[- ]?){6,14}\d)(?![\d.])")
# 第2天 -> 第二天 (wetext says 第两天).
_ORDINAL = _rx(r"第\s*(\d+)(?![\d.])")
# 2点15分 -> 两点十五分.
_HOUR_MINUTE = _rx(r"(?<![\d.])(\d{1,2})\s*点\s*(\d{1,2})\s*分")
# Per: 99元/月, 5元/kg -> 每.
_PER_SLASH = _rx(rf"(?<![\d\s/])/({_PER})(?![A-Za-z])")
# Range read as cardinals, with 两 before a measure word.
_RANGE_WORD = _rx(rf"(?<![\d.:/-])({_NUM})\s*(到|至)\s*({_NUM})(?![\d.:/])(?=\s*({_MEASURE})?)")


def _sub_date(m: re.Match[str]) -> str:
    year, month, day = m.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return m.group(0)
    return f"{read_digits(year, yao=False)}年{read_number(month)}月{read_number(day)}日"


def _sub_month_day(m: re.Match[str]) -> str:
    month, day, suffix = m.groups()
    out = read_number(month) + "月"
    if day:
        out += read_number(day) + suffix
    return out


def _sub_clock(m: re.Match[str]) -> str:
    hour, minute, second = m.groups()
    if int(hour) > 24 or int(minute) > 59 or (second and int(second) > 59):
        return m.group(0)
    out = read_number(hour, liang=True) + "点"
    if int(minute) or second:
        out += ("零" if minute[0] == "0" and minute != "00" else "") + read_number(minute) + "分"
    if second:
        out += read_number(second) + "秒"
    return out


def _sub_discount_decimal(m: re.Match[str]) -> str:
    # 9.5折 is said 九五折, never 九点五折.
    return read_digits(m.group(1) + m.group(2), yao=False) + "折"


def _sub_discount(m: re.Match[str]) -> str:
    d = m.group(1)
    return (read_digits(d, yao=False) if len(d) == 2 else read_number(d)) + "折"


def _sub_unit(m: re.Match[str]) -> str:
    return read_number(m.group(1), liang=True) + _UNITS[m.group(2)]


def _sub_money_range(m: re.Match[str]) -> str:
    cur = _CURRENCY_CODES[m.group(1)]
    return f"{_money_amount(m.group(2))}到{_money_amount(m.group(3))}{cur}"


def _sub_currency_before(m: re.Match[str]) -> str:
    return _money_amount(m.group(2)) + (m.group(3) or "") + _CURRENCY_CODES[m.group(1)]


def _sub_currency_after(m: re.Match[str]) -> str:
    return _money_amount(m.group(1)) + (m.group(2) or "") + _CURRENCY_CODES[m.group(3)]


def _sub_times(m: re.Match[str]) -> str:
    out = []
    for factor in [m.group(1), *_TIMES_SPLIT.split(m.group(2).strip())[1:]]:
        num, unit = _FACTOR.fullmatch(factor).groups()
        out.append(read_number(num, liang=bool(unit)) + _UNITS.get(unit, unit))
    return "乘".join(out)


def _sub_dotted(m: re.Match[str]) -> str:
    # 3.1.2 -> 三点一点二; long parts (192.168...) are read digit by digit.
    return "点".join(
        read_digits(p, yao=False) if len(p) > 2 else read_number(p) for p in m.group(0).split(".")
    )


def _sub_intl_phone(m: re.Match[str]) -> str:
    return "加" + read_digits(m.group(1)) + "，" + _read_code(m.group(2))


def _sub_hour_minute(m: re.Match[str]) -> str:
    hour, minute = m.groups()
    zero = "零" if len(minute) == 2 and minute[0] == "0" else ""
    return read_number(hour, liang=True) + "点" + zero + read_number(minute) + "分"


def _sub_signed_temperature(m: re.Match[str]) -> str:
    return "零下" if m.group(0).endswith("-") else "零上"


def _sub_range_word(m: re.Match[str]) -> str:
    liang = m.group(4) is not None
    return read_number(m.group(1), liang=liang) + m.group(2) + read_number(m.group(3), liang=liang)


def _sub_unit_after_per(m: re.Match[str]) -> str:
    unit = m.group(1)
    return "每" + _UNITS.get(unit, unit)


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
_RULES: tuple[_Rule, ...] = (
    # identifiers first: nothing below may read them as quantities
    (_CODE, _sub_code),
    (_INTL_PHONE, _sub_intl_phone),
    (_HOTLINE, _sub_groups),
    (_MOBILE, _sub_mobile),
    (_LANDLINE, _sub_groups),
    (_EXTENSION, lambda m: m.group(1) + read_digits(m.group(2))),
    (_LONG_DIGITS, lambda m: read_digits(m.group(0))),
    (_LETTER_CODE, lambda m: m.group(1) + read_digits(m.group(2))),
    (_DATE_YMD, _sub_date),
    (_DOTTED, _sub_dotted),
    # ranges, signs and products, before each quantity is read on its own
    (
        _YEAR_RANGE,
        lambda m: (
            read_digits(m.group(1), yao=False)
            + m.group(2)
            + "到"
            + read_digits(m.group(3), yao=False)
        ),
    ),
    (_MONEY_RANGE, _sub_money_range),
    (_WEEKDAY_DIGIT, lambda m: m.group(1) + _WEEKDAY[m.group(2)]),
    (_WEEKDAY_RANGE, lambda m: f"{m.group(1)}{m.group(2)}到{m.group(3) or m.group(1)}{m.group(4)}"),
    (_PERCENT_RANGE, lambda m: f"百分之{read_number(m.group(1))}到百分之{read_number(m.group(2))}"),
    (_RANGE_SIGN, lambda m: m.group(1).rstrip() + "到"),
    (_BELOW_ZERO, _sub_signed_temperature),
    (_ABOVE_ZERO, _sub_signed_temperature),
    (_MINUS, lambda m: "负"),
    (_PLUS, lambda m: "正"),
    (_CURRENCY_BEFORE, _sub_currency_before),
    (
        _MONEY_PREFIX,
        lambda m: _money_amount(m.group(2)) + (m.group(3) or "") + _CURRENCY_PREFIX[m.group(1)],
    ),
    (
        _MONEY_SUFFIX,
        lambda m: (
            _money_amount(m.group(1))
            + ("元" if m.group(2) in ("RMB", "rmb", "CNY") else m.group(2))
        ),
    ),
    (_CURRENCY_AFTER, _sub_currency_after),
    (_TIMES, _sub_times),
    (_ORDINAL, lambda m: "第" + read_number(m.group(1))),
    (_THOUSANDS, lambda m: read_number(m.group(0))),
    (_YEAR, lambda m: read_digits(m.group(1), yao=False) + "年"),
    (_MONTH_DAY, _sub_month_day),
    (_DAY, lambda m: read_number(m.group(1)) + m.group(2)),
    (_CLOCK, _sub_clock),
    (_HOUR_MINUTE, _sub_hour_minute),
    (_HOUR, lambda m: read_number(m.group(1), liang=True) + "点"),
    (_PERCENT, lambda m: "百分之" + read_number(m.group(1))),
    (_PERMILLE, lambda m: "千分之" + read_number(m.group(1))),
    (_DISCOUNT_DECIMAL, _sub_discount_decimal),
    (_DISCOUNT, _sub_discount),
    (_UNIT, _sub_unit),
    (_PER_SLASH, _sub_unit_after_per),
    (_RANGE, lambda m: f"{read_number(m.group(1))}到{read_number(m.group(2))}"),
    (_RANGE_WORD, _sub_range_word),
)


def apply_rules(text: str) -> str:
    """Our own customer-service rules (layer 1)."""
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text


# --- wetext (layer 2) --------------------------------------------------------

_wetext_lock = threading.Lock()
_wetext_normalizer: object | None = None
_wetext_failed = False
WETEXT_LOAD_SECONDS: float | None = None

_WINDOW = 6  # hanzi of context kept on each side of a digit for wetext
_DIGIT_RUN = _rx(r"\d[\d.,:/%+\-×x*]*")


def _get_wetext():
    """Load wetext once, lazily; None if it cannot be loaded."""
    global _wetext_normalizer, _wetext_failed, WETEXT_LOAD_SECONDS
    if _wetext_normalizer is not None or _wetext_failed:
        return _wetext_normalizer
    with _wetext_lock:
        if _wetext_normalizer is None and not _wetext_failed:
            start = time.perf_counter()
            try:
                from wetext import Normalizer

                normalizer = Normalizer(lang="zh", operator="tn")
                # Force the FSTs to load now rather than on the first request.
                normalizer.normalize("1")
            except Exception:  # any import/FST failure: fall back to digit reading
                _wetext_failed = True
                logger.warning("wetext unavailable; numbers will be read digit by digit")
                return None
            WETEXT_LOAD_SECONDS = time.perf_counter() - start
            _wetext_normalizer = normalizer
    return _wetext_normalizer


def _wetext_window(normalizer, text: str) -> str:
    try:
        return normalizer.normalize(text)
    except Exception as exc:  # wetext raises RuntimeError when no FST path exists
        log_once(logging.DEBUG, "wetext", type(exc).__name__, "wetext failed: %s", exc)
        return text


def _apply_wetext(text: str) -> str:
    spans = [m.span() for m in _DIGIT_RUN.finditer(text)]
    if not spans:
        return text
    normalizer = _get_wetext()
    if normalizer is None:
        return text
    # Merge digit runs whose context windows overlap, then normalise each
    # window on its own so the cost does not grow with the whole text.
    windows: list[list[int]] = []
    for start, end in spans:
        lo, hi = max(0, start - _WINDOW), min(len(text), end + _WINDOW)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    out, pos = [], 0
    for lo, hi in windows:
        out.append(text[pos:lo])
        out.append(_wetext_window(normalizer, text[lo:hi]))
        pos = hi
    out.append(text[pos:])
    return "".join(out)


_LEFTOVER_DIGITS = _rx(r"[0-9]+")
# Full-width CJK punctuation is kept: it carries the sentence and clause
# structure, and folding "，" to "," would make "1，200" look like 1,200.
_KEEP_WIDTH = frozenset("，。：；！？（）、【】《》“”‘’²³～")
# One-glyph units NFKC would flatten to m2 / m3 (read 米二).
_UNIT_GLYPHS = str.maketrans({"㎡": "m²", "㎥": "m³", "㎠": "cm²", "㎢": "km²", "㎖": "ml"})


def fold_width(text: str) -> str:
    """NFKC-fold full-width digits, letters and symbols (１２３, ％, ㎏) to ASCII."""
    if text.isascii():
        return text
    text = text.translate(_UNIT_GLYPHS)
    return "".join(
        ch if ch in _KEEP_WIDTH or ch.isascii() else unicodedata.normalize("NFKC", ch)
        for ch in text
    )


def normalise_text(text: str) -> str:
    """Rewrite ``text`` so that every number and unit is spelled in hanzi.

    Letters, punctuation and characters we cannot speak are left in place;
    the G2P step spells letters and drops what it cannot speak.
    """
    text = fold_width(text)
    text = apply_rules(text)
    text = _apply_wetext(text)
    # Whatever neither layer understood is still read, digit by digit.
    return _LEFTOVER_DIGITS.sub(lambda m: read_digits(m.group(0), yao=False), text)
