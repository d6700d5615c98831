import assert from "node:assert";
import { join } from "node:path";
import {
  barFigure,
  decisionRegionFigure,
  imageGridFigure,
  lineFigure,
  tableFigure,
} from "../../lib/plot/figures.ts";
import { figuresHtml, PLOTLY_FILE, plotlyJs, writeFiguresHtml } from "../../lib/plot/html.ts";
import { lineChartSvg } from "../../lib/plot/svg.ts";
import { show } from "../../lib/plot/notebook.ts";

const line = lineFigure([{ name: "test acc", x: [1, 2], y: [0.5, 0.75] }], {
  title: "curves",
  xTitle: "epoch",
  yTitle: "acc",
});

Deno.test("figure HTML is self-contained: plotly inlined, no external script, the data embedded", () => {
  const html = figuresHtml([
    line,
    barFigure(["a"], [{ name: "g", values: [1] }], { title: "bars", yTitle: "y" }),
  ], "t");
  assert.ok(html.length > 3_000_000, "plotly.js not inlined");
  assert.ok(!/<script[^>]+src=/i.test(html), "external script");
  assert.ok(html.includes('"test acc"') && html.includes("[0.5,0.75]"));
  assert.ok(html.includes('Plotly.newPlot("fig0"') && html.includes('Plotly.newPlot("fig1"'));
  assert.ok(!html.includes('Plotly.newPlot("fig2"'));
});

Deno.test("figure JSON cannot close the script element", () => {
  const html = figuresHtml([tableFigure(["x"], [["</script><b>"]], "t")], "t");
  assert.ok(!html.includes("</script><b>"));
});

Deno.test("figure builders produce the expected traces", async () => {
  const grid = imageGridFigure(
    [{
      pixels: new Uint8Array([0, 255, 10, 20]),
      height: 2,
      width: 2,
      channels: 1,
      caption: "a 0",
    }],
    { title: "g", columns: 4 },
  );
  assert.deepStrictEqual(grid.data[0].z[0][1], [255, 255, 255]);
  const dr = decisionRegionFigure({
    title: "d",
    xs: [0, 1],
    ys: [0, 1],
    z: [[0, 1], [1, 1]],
    points: { x: [0, 1], y: [0, 1], label: [0, 1] },
  });
  assert.deepStrictEqual(dr.data.map((d) => d.type), ["heatmap", "scattergl", "scattergl"]);
  // pages in one folder share one plotly copy beside them
  const dir = await Deno.makeTempDir();
  await writeFiguresHtml(join(dir, "f.html"), line);
  await writeFiguresHtml(join(dir, "g.html"), dr);
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepStrictEqual(files, ["f.html", "g.html", PLOTLY_FILE]);
  assert.strictEqual(await Deno.readTextFile(join(dir, PLOTLY_FILE)), plotlyJs());
  for (const page of ["f.html", "g.html"]) {
    const html = await Deno.readTextFile(join(dir, page));
    assert.ok(html.length < 100_000, `${page} inlines plotly`);
    assert.ok(html.includes(`<script src="${PLOTLY_FILE}"></script>`));
  }
});

Deno.test("show() gives the Jupyter kernel an HTML bundle with the figure", () => {
  const first = show(line)[Symbol.for("Jupyter.display")]();
  const second = show(line)[Symbol.for("Jupyter.display")]();
  assert.ok(first["text/html"].includes("Plotly.newPlot") && first["text/html"].length > 3_000_000);
  assert.ok(second["text/html"].length < 10_000, "plotly.js shipped twice");
});

Deno.test("SVG line chart with a log x axis: decade ticks, points placed by log10(x), x ≤ 0 left out", () => {
  const svg = lineChartSvg([{ name: "a", x: [0, 1, 10, 100], y: [5, 1, 2, 3] }], {
    title: "t",
    xTitle: "step",
    yTitle: "y",
    logX: true,
    width: 400,
    height: 300,
  });
  for (const label of [">1<", ">10<", ">100<"]) assert.ok(svg.includes(label), `tick ${label}`);
  const pts = svg.match(/points="([^"]+)"/)![1].split(" ").map((p) => Number(p.split(",")[0]));
  assert.equal(pts.length, 3, "the x = 0 point is dropped");
  // equal steps in log10(x): 1 → 10 → 100 are equally spaced
  assert.ok(Math.abs((pts[1] - pts[0]) - (pts[2] - pts[1])) < 0.2, `positions ${pts}`);
});

Deno.test("SVG line chart with a log y axis: decade ticks, points placed by log10(y), y ≤ 0 left out", () => {
  const svg = lineChartSvg([{ name: "a", x: [0, 1, 2, 3], y: [0, 0.01, 0.1, 1e11] }], {
    title: "t",
    xTitle: "step",
    yTitle: "loss",
    logY: true,
    width: 400,
    height: 300,
  });
  // 14 decades, labelled every second one
  for (const label of [">0.01<", ">1<", ">1e10<"]) assert.ok(svg.includes(label), `tick ${label}`);
  assert.ok(!svg.includes(">0.1<"), "every decade labelled");
  const pts = svg.match(/points="([^"]+)"/)![1].split(" ").map((p) => Number(p.split(",")[1]));
  assert.equal(pts.length, 3, "the y = 0 point is dropped");
  // one decade 0.01 → 0.1 is 1/13 of the span 0.01 → 1e11 (13 decades)
  const ratio = (pts[0] - pts[1]) / (pts[0] - pts[2]);
  assert.ok(Math.abs(ratio - 1 / 13) < 0.01, `ratio ${ratio}`);
});
