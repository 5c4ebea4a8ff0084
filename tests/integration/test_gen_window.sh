#!/usr/bin/env bash
# huren-gen writes a Window Center/Width that shows its images: for every
# image modality (CT in HU with its Rescale Intercept, 8-bit US, multi-frame)
# the window lies over the values actually generated (after the rescale,
# PS3.3 C.11.2.1.2), so a viewer applying it does not show a black or white
# square. Checked against the pixels as pydicom reads them.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

n=0
for spec in "CT" "CT --bytes 200000" "US" "US --frames 5 --bytes 40000" "PT" "NM --frames 3"; do
  set -- $spec
  m=$1; shift
  "$GEN" --out "$T/g$n" --modality "$m" --seed $((300 + n)) "$@" >/dev/null
  for f in "$T/g$n"/*; do
    c=$(dcmdump -Un +P 0028,1050 "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1)
    w=$(dcmdump -Un +P 0028,1051 "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1)
    check "$spec: window $c/$w lies over the generated values" $PY - "$f" "$c" "$w" <<'PY'
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
c, w = float(sys.argv[2]), float(sys.argv[3])
a = ds.pixel_array
slope = float(getattr(ds, 'RescaleSlope', 1) or 1)
icpt = float(getattr(ds, 'RescaleIntercept', 0) or 0)
lo, hi = a.min() * slope + icpt, a.max() * slope + icpt
mean = a.mean() * slope + icpt
# PS3.3 C.11.2.1.2.1: values <= c - 0.5 - (w-1)/2 are black, > c - 0.5 + (w-1)/2 white
black = c - 0.5 - (w - 1) / 2
white = c - 0.5 + (w - 1) / 2
ok = lo <= c <= hi and black <= lo + 1 and white >= hi - 1 and w <= 2 * (hi - lo) + 2
# most pixels are neither clipped black nor white
mid = ((a * slope + icpt > black) & (a * slope + icpt <= white)).mean()
print('range %g..%g mean %.1f window %g/%g, %.0f%% of pixels inside' % (lo, hi, mean, c, w, 100 * mid))
sys.exit(0 if ok and mid > 0.9 else 1)
PY
  done
  n=$((n + 1))
done
check_eq "CT declares its HU rescale" "-1024" \
  "$(dcmdump -Un +P 0028,1052 "$T"/g0/* | sed -n 's/.*\[\(.*\)\].*/\1/p')"
finish
