// WGS-84 (GPS, how venues are stored) → GCJ-02 (the datum of AMap and Tencent maps): the same arithmetic as
// monitor/decisions/geodesy.py wgs84_to_gcj02 (tests/test_inspector_page.py compares the two).
export const Gcj02 = (() => {
  const A = 6378245.0;
  const EE = 0.00669342162296594323;
  const outsideChina = (lat, lon) => !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
  function transformLat(x, y) {
    let ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
    ret += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
    return ret;
  }
  function transformLon(x, y) {
    let ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
    ret += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
    return ret;
  }
  function fromWgs84(lat, lon) {
    if (outsideChina(lat, lon)) return [lat, lon];
    let dlat = transformLat(lon - 105.0, lat - 35.0);
    let dlon = transformLon(lon - 105.0, lat - 35.0);
    const radlat = lat / 180.0 * Math.PI;
    const magic = 1 - EE * Math.sin(radlat) ** 2;
    const sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * Math.PI);
    dlon = (dlon * 180.0) / (A / sqrtmagic * Math.cos(radlat) * Math.PI);
    return [lat + dlat, lon + dlon];
  }
  return { fromWgs84, outsideChina };
})();

window.Gcj02 = Gcj02;  // for the tests, which compare it with monitor/decisions/geodesy.py
