// The register sources a cross-check relies on, by the zh-CN names the payment list prints (the admins' register page
// reads the same from /api/v1/registers/sources; operators and auditors may not, so the wall and the ledger use these).
export const SOURCE_NAMES = {
  insurance: "社会保险参保数据", employment: "就业失业登记", certificates: "职业技能等级证书", teachers: "师资库",
  vouchers: "培训券登记",
};
export const sourceName = code => SOURCE_NAMES[code] || code;

// "社会保险参保数据 2026-11、师资库 2026-11" from {source: {period}} or {source: period}.
export function periodsText(registers) {
  const parts = Object.entries(registers || {}).sort(([a], [b]) => a.localeCompare(b))
    .map(([source, r]) => `${sourceName(source)} ${typeof r === "string" ? r : r.period}`);
  return parts.join("、");
}
