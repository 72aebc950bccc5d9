// Times as every screen shows them: Asia/Shanghai, 24-hour, zh-CN (the server stores and sends UTC).
const timeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit",
  second: "2-digit", hour12: false });
const dateTimeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
  day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const dayFmt = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" });

/** 08:59:03 in Asia/Shanghai for an ISO instant. */
export const time = iso => timeFmt.format(new Date(iso));
/** 2025/03/01 08:59:03 in Asia/Shanghai for an ISO instant. */
export const dateTime = iso => dateTimeFmt.format(new Date(iso));
/** Today's date in Asia/Shanghai as YYYY-MM-DD. */
export const today = () => dayFmt.format(new Date());

/** An instant as the phone knows it, with its zone: 2025-03-01T08:59:03.120+08:00. */
export function isoWithZone(d) {
  const off = -d.getTimezoneOffset();
  const pad = n => String(Math.floor(Math.abs(n))).padStart(2, "0");
  const local = new Date(d.getTime() + off * 60000).toISOString().slice(0, 23);
  return `${local}${off >= 0 ? "+" : "-"}${pad(off / 60)}:${pad(off % 60)}`;
}
