# phases-ab.sh N OUTFILE: interleaved restores of before (8dc734c), main (ae42dd0) and branch; per run: wall, t0->open,
# open, preflight, CRIU's start after open's, ready, readyMs (from `stasis restore --json`)
N=${1:-5}; OUT=$2; : > $OUT
for i in $(seq 1 $N); do
  for v in ${BUILDS:-before main branch}; do
    case $v in
      before) JS=/tmp/rf-old/dist/cli/main.js H=/tmp/rf-home-old ;;
      main) JS=/tmp/rf-main/dist/cli/main.js H=/tmp/rf-home-main ;;
      branch) JS=/work/wt-restore-fast/dist/cli/main.js H=/tmp/rf-home ;;
      seq) JS=/work/wt-restore-fast/dist-seq/cli/main.js H=/tmp/rf-home ;;
    esac
    t0=$(date +%s%N)
    STASIS_HOME=$H node $JS restore slow --json > /tmp/rf/r.json 2>/tmp/rf/err.txt || cat /tmp/rf/err.txt
    t1=$(date +%s%N)
    echo "$v $(( (t1-t0)/1000000 )) $(node -e 'const r=JSON.parse(require("fs").readFileSync("/tmp/rf/r.json","utf8"));const p=r.phases;const g=n=>p.find(x=>x.name===n);const o=g("open").startMs;console.log([o, g("open").durationMs, g("preflight").durationMs, g("criu-restore").startMs-o, g("ready").durationMs, r.readyMs].map(Math.round).join(" "))')" >> $OUT
    STASIS_HOME=$H node $JS stop --all --grace 1 >/dev/null
  done
done
node -e '
const rows=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(l=>l.split(" "));
const cols=["wall","cli-to-open","open","preflight","criu-start-after-open","ready","readyMs"];
const med=a=>{a=[...a].sort((x,y)=>x-y);return a.length%2?a[(a.length-1)/2]:(a[a.length/2-1]+a[a.length/2])/2};
console.log("build n "+cols.join(" "));
for(const b of (process.env.BUILDS??"before main branch").split(" ")){const rs=rows.filter(r=>r[0]===b);console.log(b,rs.length,cols.map((c,i)=>med(rs.map(r=>Number(r[i+1])))).join(" "))}
' $OUT
