"""Chinese text normalisation: digits, symbols and units -> speakable hanzi.

Two layers:

1. Our own rules, applied first, for the things a customer-service voice must
   get right and general-purpose normalisers get wrong: phone numbers,
   hotlines, verification codes, order numbers and account tails are read digit
   by digit; money, discounts, times, ranges and a few units are read the way
   an agent would say them.
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
    "会员号|客户号|房间号|手机号码|手机号|电话号码|号码|手机|电话|热线|座机|分机|"
    "拨打|致电|呼叫|联系|微信号|QQ"
)
_CODE = _rx(
    rf"({_CODE_KEYWORDS})((?:是|为|:|：|\s)*)"
    r"((?:\+?86[- ]?)?[0-9A-Za-z](?:[0-9A-Za-z]|[- ](?=[0-9A-Za-z])){2,})"
)
_MOBILE = _rx(r"(?<![0-9])(\+?86[- ]?)?(1[3-9][0-9]{9})(?![0-9])")
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
# case-sensitively except where both cases are listed.
_UNITS = {
    "kg": "千克", "KG": "千克", "Kg": "千克", "g": "克", "mg": "毫克", "t": "吨",
    "km": "公里", "KM": "公里", "cm": "厘米", "mm": "毫米", "m": "米",
    "ml": "毫升", "mL": "毫升", "ML": "毫升", "L": "升", "l": "升",
    "mAh": "毫安时", "kWh": "千瓦时", "kW": "千瓦", "W": "瓦", "V": "伏",
    "℃": "摄氏度", "°C": "摄氏度", "℉": "华氏度", "°F": "华氏度", "°": "度",
    "m²": "平方米", "㎡": "平方米", "m³": "立方米", "km/h": "公里每小时",
}  # fmt: skip
_UNIT = _rx(
    rf"(?<![\d.])({_NUM})\s*("
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?![A-Za-z])"
)


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


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
_RULES: tuple[_Rule, ...] = (
    (_CODE, _sub_code),
    (_HOTLINE, _sub_groups),
    (_MOBILE, _sub_mobile),
    (_LANDLINE, _sub_groups),
    (_LONG_DIGITS, lambda m: read_digits(m.group(0))),
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
    (_THOUSANDS, lambda m: read_number(m.group(0))),
    (_DATE_YMD, _sub_date),
    (_YEAR, lambda m: read_digits(m.group(1), yao=False) + "年"),
    (_MONTH_DAY, _sub_month_day),
    (_DAY, lambda m: read_number(m.group(1)) + m.group(2)),
    (_CLOCK, _sub_clock),
    (_HOUR, lambda m: read_number(m.group(1), liang=True) + "点"),
    (
        _PERCENT_RANGE,
        lambda m: f"百分之{read_number(m.group(1))}到百分之{read_number(m.group(2))}",
    ),
    (_PERCENT, lambda m: "百分之" + read_number(m.group(1))),
    (_PERMILLE, lambda m: "千分之" + read_number(m.group(1))),
    (_DISCOUNT_DECIMAL, _sub_discount_decimal),
    (_DISCOUNT, _sub_discount),
    (_RANGE, lambda m: f"{read_number(m.group(1))}到{read_number(m.group(2))}"),
    (_UNIT, _sub_unit),
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
_KEEP_WIDTH = frozenset("，。：；！？（）、【】《》“”‘’")


def fold_width(text: str) -> str:
    """NFKC-fold full-width digits, letters and symbols (１２３, ％, ㎏) to ASCII."""
    if text.isascii():
        return text
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
