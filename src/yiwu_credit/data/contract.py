"""The data contract: tables, columns, types, code lists and bilingual descriptions.

``docs/data-contract.md`` is the readable form of this module; :func:`yiwu_credit.load_dataset`
enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ENTITY_TYPES", "STATUSES", "PROCEDURES", "LISTS", "TAX_RATINGS", "INDUSTRY_PATTERN", "YIWU_TOWNS",
    "RESULT_LABELS_ZH", "INSPECTION_RESULTS", "ABNORMAL_REASONS", "LIST_REASONS", "Column", "Table", "TABLES",
    "EVENT_TABLES",
]

ENTITY_TYPES = ("enterprise", "individual", "cooperative")
STATUSES = ("active", "revoked", "cancelled")
PROCEDURES = ("simple", "general")
LISTS = ("abnormal_operation", "serious_dishonest", "court_dishonest")
TAX_RATINGS = ("A", "B", "M", "C", "D")
INDUSTRY_PATTERN = r"^[A-T]\d{0,4}$"  # GB/T 4754-2017: section letter A–T, then up to 4 digits

#: The 14 towns/streets of Yiwu (义政发〔2022〕35号; division codes 330782xxx).
YIWU_TOWNS = (
    "稠城街道", "福田街道", "江东街道", "稠江街道", "北苑街道", "后宅街道", "廿三里街道", "城西街道",
    "佛堂镇", "苏溪镇", "上溪镇", "大陈镇", "义亭镇", "赤岸镇",
)

RESULT_LABELS_ZH = {
    "no_problem": "未发现问题",
    "corrected": "发现问题已责令改正",
    "pending": "发现问题待后续处理",
    "info_not_published": "未按规定公示应当公示的信息",
    "info_false": "公示信息隐瞒真实情况弄虚作假",
    "unreachable": "通过登记的住所无法联系",
    "refused": "不配合检查情节严重",
    "no_activity": "未发现开展本次抽查涉及的经营活动",
    "closed": "已关闭停业/注销/吊销",
    "other_dept": "违反其他部门规定",
}
#: The inspection result codes (the national 双随机 result categories), in the order above.
INSPECTION_RESULTS: tuple[str, ...] = tuple(RESULT_LABELS_ZH)

#: The four grounds for the abnormal-operation list (《企业经营异常名录管理暂行办法》第四条): annual
#: report not published in time, instant information not published when ordered, false
#: information, unreachable at the registered address.
ABNORMAL_REASONS = ("annual_report", "instant_info", "false_info", "unreachable")
#: Codes of list_records.reason (列入事由): the abnormal-operation grounds, the serious-dishonest
#: list's (serious_violation) and the court's (court_judgment), and ``other``: a reason matching
#: none of them, kept as ``other`` and counted in the notes when loading.
LIST_REASONS = (*ABNORMAL_REASONS, "serious_violation", "court_judgment", "other")


@dataclass(frozen=True)
class Column:
    """One column: ``kind`` is id | str | code | date | float | int | bool | year.

    Code columns, and text columns with ``key=True`` (compared with a fixed list, as towns
    are), are read as keys: Unicode NFKC with format characters (zero-width spaces...) removed.
    A code value that matches no code is rejected, unless the column has a ``fallback`` code:
    then it becomes that code, counted in the notes."""

    name: str
    kind: str
    zh: str
    en: str
    nullable: bool = False
    codes: tuple[str, ...] | None = None
    min_value: float | None = None  # inclusive lower bound for numbers
    max_value: float | None = None
    min_exclusive: bool = False  # the lower bound itself is not allowed
    key: bool = False  # text read as a key (see above); always so for code columns
    fallback: str | None = None  # code of values that match no code (instead of a reject)


@dataclass(frozen=True)
class Table:
    name: str
    zh: str
    en: str
    columns: tuple[Column, ...]
    date_column: str | None = None  # the event date checked against as_of and establishment
    required: bool = True

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_ID = Column("entity_id", "id", "统一社会信用代码", "unified social credit code (USCC, 18 chars)")

TABLES: dict[str, Table] = {t.name: t for t in (
    Table("entities", "市场主体", "market entities", (
        _ID,
        Column("entity_type", "code", "主体类型", "entity type", codes=ENTITY_TYPES),
        Column("industry", "str", "行业代码(GB/T 4754-2017)", "industry code (GB/T 4754-2017, e.g. F5137)",
               key=True),
        Column("town", "str", "所属镇街", "town or street", key=True),
        Column("established_on", "date", "成立日期", "date established"),
        Column("registered_capital", "float", "注册资本(万元)", "registered capital (10k CNY)", nullable=True, min_value=0),
        Column("employees", "float", "从业人数", "employees", nullable=True, min_value=0),
        Column("status", "code", "登记状态", "registration status", codes=STATUSES),
        Column("closed_on", "date", "注销/吊销日期", "date revoked or cancelled", nullable=True),
    )),
    Table("penalties", "行政处罚", "administrative penalties", (
        _ID,
        Column("decided_on", "date", "处罚决定日期", "decision date"),
        Column("procedure", "code", "程序类型", "procedure", codes=PROCEDURES),
        Column("fine_cny", "float", "罚没金额(元)", "fine (CNY)", min_value=0),
        Column("domain", "str", "违法领域", "domain of the violation"),
        Column("repaired_on", "date", "信用修复日期", "date of credit repair", nullable=True),
    ), date_column="decided_on"),
    Table("inspections", "检查记录", "inspections", (
        _ID,
        Column("inspected_on", "date", "检查日期", "inspection date"),
        Column("result", "code", "检查结果", "result code", codes=INSPECTION_RESULTS),
        Column("campaign_id", "str", "抽查任务编号", "campaign id", nullable=True),
        Column("inclusion_prob", "float", "入样概率", "inclusion probability in the campaign",
               nullable=True, min_value=0, max_value=1, min_exclusive=True),
        Column("department", "str", "检查部门", "department", nullable=True),
    ), date_column="inspected_on"),
    Table("complaints", "投诉举报", "complaints", (
        _ID,
        Column("received_on", "date", "受理日期", "date received"),
        Column("substantiated", "bool", "是否属实", "substantiated", nullable=True),
    ), date_column="received_on"),
    Table("annual_reports", "年度报告", "annual reports", (
        _ID,
        Column("year", "year", "报告年度", "report year"),
        Column("filed_on", "date", "报送日期", "date filed (empty = not filed; due 30 June of year+1)", nullable=True),
    ), date_column="filed_on"),
    Table("list_records", "名单记录", "list records", (
        _ID,
        Column("list", "code", "名单类型", "list", codes=LISTS),
        Column("entered_on", "date", "列入日期", "date entered"),
        Column("removed_on", "date", "移出日期", "date removed", nullable=True),
        Column("reason", "code", "列入事由", "reason (ground of the listing)",
               nullable=True, codes=LIST_REASONS, fallback="other"),
    ), date_column="entered_on"),
    Table("tax_ratings", "纳税信用等级", "tax credit ratings", (
        _ID,
        Column("year", "year", "评价年度", "rating year"),
        Column("rating", "code", "纳税信用等级", "rating", codes=TAX_RATINGS),
    ), required=False),
)}

EVENT_TABLES = tuple(n for n in TABLES if n != "entities")
