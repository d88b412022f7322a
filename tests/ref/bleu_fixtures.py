#!/usr/bin/env python3
"""Regenerate tests/fixtures/bleu/: hypothesis/reference files and sacrebleu's own output for them.

Run with Debian's python3 and a plain source checkout of sacrebleu (no pip install needed; the
checkout's missing sacrebleu/version.py is supplied below):

    /usr/bin/python3 tests/ref/bleu_fixtures.py [SACREBLEU_CHECKOUT]
    SACREBLEU_PATH=/tmp/sacrebleu /usr/bin/python3 tests/ref/bleu_fixtures.py

The checkout path comes from the first argument, else $SACREBLEU_PATH, else /tmp/sacrebleu. Without a
checkout the script says so and exits 0 (so `make fixtures` still regenerates the other fixtures).
It needs python3-regex, -tabulate, -numpy, -colorama, -lxml, -portalocker (Debian packages).

The committed fixtures were made with sacrebleu v2.6.0-1-gf615c72
(github.com/mjpost/sacrebleu commit f615c7286d4d813370efb824d94fc2bfcd3a6b94), Python 3.11.2.

What it writes (all under tests/fixtures/bleu/):
  CASE.hyp, CASE.ref0 [, CASE.ref1 ...]   raw bytes, exactly as listed in CASES below
  expected.txt   one record a line, TAB-separated: CASE <TAB> KIND <TAB> VALUE, KIND one of
                   refs    number of reference files
                   bleu    str(BLEU().corpus_score(hyps, refs))         (API defaults: 13a, exp)
                   chrf    str(CHRF().corpus_score(hyps, refs))          (chrF2, char order 6)
                   sent    str(BLEU(effective_order=True).sentence_score(h, rs)), one per segment
                   sentchrf  str(CHRF().sentence_score(h, rs)), one per segment
                   stdin   the BLEU line of the sacrebleu CLI with the hypotheses on stdin, or
                           "error: exit N" when it refuses them
  tok13a.json    [{"in": s, "out": Tokenizer13a()(s)}, ...] on hostile strings
  whitespace.txt the code points for which Python's str.isspace() is true, in hex, one a line

Files are read the way the sacrebleu CLI reads them (utils.smart_open: UTF-8, newline="\n", each
line rstrip()ed), and every corpus line is cross-checked against the real CLI (`sacrebleu REF... -i
HYP -m bleu|chrf -f text -w 2`, signature removed), so the fixtures pin down the reading rules too.
"""
import json
import os
import random
import re
import subprocess
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "bleu")
SACREBLEU_VERSION = "2.6.0"

# Supplies sacrebleu/version.py, which a plain checkout lacks (it is generated at packaging time).
BOOT = (
    "import sys, types\n"
    "m = types.ModuleType('sacrebleu.version'); m.__version__ = %r\n"
    "sys.modules['sacrebleu.version'] = m\n" % SACREBLEU_VERSION
)


def load_sacrebleu(path):
    sys.path.insert(0, path)
    m = types.ModuleType("sacrebleu.version")
    m.__version__ = SACREBLEU_VERSION
    sys.modules["sacrebleu.version"] = m
    import sacrebleu  # noqa: F401
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    return BLEU, CHRF, Tokenizer13a


# ---- the cases: (name, hyp file text, [ref file texts]) -----------------------------------------

def lines(*ls):
    return "".join(x + "\n" for x in ls)


def random_corpus(seed, n, vocab, max_len, noise):
    """n parallel lines: a reference and a hypothesis that is a noisy copy of it."""
    rng = random.Random(seed)
    hyp, ref0, ref1 = [], [], []
    for _ in range(n):
        ref = [rng.choice(vocab) for _ in range(rng.randint(0, max_len))]
        h = [w if rng.random() > noise else rng.choice(vocab) for w in ref]
        if rng.random() < 0.2 and h:
            del h[rng.randrange(len(h))]
        if rng.random() < 0.2:
            h.insert(rng.randint(0, len(h)), rng.choice(vocab))
        other = [w if rng.random() > noise else rng.choice(vocab) for w in ref]
        if rng.random() < 0.3:
            other = other[: len(other) // 2]
        hyp.append(" ".join(h))
        ref0.append(" ".join(ref))
        ref1.append(" ".join(other))
    return lines(*hyp), lines(*ref0), lines(*ref1)


# Characters the 13a rules treat specially, plus Python whitespace, multi-byte and combining marks.
FUZZ_ALPHABET = (
    list("abcXYZ0123456789") * 3
    + list(".,-'\"&;<>!?()[]{}/\\:@^_`|~*+=#$%")
    + ["&quot;", "&amp;", "&lt;", "&gt;", "<skipped>", "1,000.50", "-", "--", "..."]
    + [" "] * 12
    + ["\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680", "\u2000",
       "\u2007", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\r"]
    + ["\u200b", "\u180e", "\ufeff", "\u00e4", "\u00df", "\u0301", "\u4e2d", "\u6587", "\u3002",
       "\U0001f600", "\u2014", "\u2013", "\u2019", "\uff0c", "\uff0e", "\u0660", "\u00b2"]
)


def fuzz_corpus(seed, n):
    rng = random.Random(seed)

    def line():
        return "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, 40)))

    hyp, ref0, ref1 = [], [], []
    for _ in range(n):
        r = line()
        # Hypotheses share pieces of the reference so that some n-grams match.
        cut = rng.randint(0, len(r))
        h = r[:cut] + line()[: rng.randint(0, 10)] + r[cut:]
        hyp.append(h)
        ref0.append(r)
        ref1.append(line())
    return lines(*hyp), lines(*ref0), lines(*ref1)


def make_cases():
    words = ("the a man woman dog cat is are on in at of with and to from running sits red blue big "
             "small street water ball two three people , . ! ?").split()
    long_rng = random.Random(7)
    long_ref = " ".join(long_rng.choice(words) for _ in range(2500))
    long_hyp = " ".join(w if long_rng.random() > 0.1 else "xx" for w in long_ref.split(" "))
    rc_hyp, rc_ref0, rc_ref1 = random_corpus(1, 300, words, 25, 0.25)
    fz_hyp, fz_ref0, fz_ref1 = fuzz_corpus(2, 300)
    fz2_hyp, fz2_ref0, fz2_ref1 = fuzz_corpus(3, 40)

    return [
        ("guide7", lines("the cat sat on a mat ."), [lines("the cat sat on the mat .")]),
        ("perfect", lines("A man is riding a bike.", "Two dogs play in the snow."),
         [lines("A man is riding a bike.", "Two dogs play in the snow.")]),
        ("empty_hyp_lines", lines("a man rides a horse .", "", "the dog runs fast", ""),
         [lines("a man rides a horse .", "two girls sing", "the dog runs very fast", "ok")]),
        ("all_empty_hyp", lines("", "", ""), [lines("one two three", "four five", "six")]),
        ("empty_refs", lines("a man rides a horse .", "two girls sing", "the dog runs"),
         [lines("a man rides a horse .", "", "the dog runs fast")]),
        ("all_empty", lines("", ""), [lines("", "")]),
        ("hyp_only_when_refs_empty", lines("some words here", "and more"), [lines("", "")]),
        ("multi_ref", lines("the quick brown fox jumps", "a b c d e f g h", "hello there world"),
         [lines("the quick brown fox jumps over the dog", "a b c d", "hello world"),
          lines("a quick brown fox", "a b c d e f g h i j", "hello there big world")]),
        ("multi_ref_ties", lines("one two three four five"),
         [lines("one two three four"), lines("one two three four five six")]),
        ("multi_ref3_empty", lines("a cat on a mat", "nothing matches here at all", ""),
         [lines("a cat on the mat", "", "x"), lines("the cat is on a mat", "", ""),
          lines("", "nothing", "y z")]),
        ("skipped", lines("<skipped> the cat <skipped>sat", "&lt;skipped&gt; x", "<skip<skipped>ped> y",
                          "a<skipped>b"),
         [lines("the cat sat", "<skipped> x", "<skipped> y", "ab")]),
        ("entities", lines("He said &quot;hi&quot; &amp; left &lt;now&gt;", "&amp;lt; &amp;quot; &AMP; &quot",
                           "a&b&amp;c", "&lt;&gt;&amp;&quot;"),
         [lines('He said "hi" & left <now>', "&lt; &quot; &AMP; &quot", "a&b&c", '<>&"')]),
        ("punct_runs", lines("Wait!!! What?! (really) [yes] {no} ...", "a--b -- c---d", "~`^_|\\ @#$%*+=",
                             "end.", "x..y,,z ;: <tag/>"),
         [lines("Wait! What? (really) [yes] {no}...", "a - b -- c - - - d", "~ ` ^ _ | \\ @ # $ % * + =",
                "end .", "x.. y,, z;: <tag />")]),
        ("numbers", lines("It costs 1,000.50 dollars.", "Pi is 3.14, e is 2.71.", "1. .5 1-2 x-1 2- a,b 1,a",
                          "U.S.A. 10.000,00 1,2,3 -5 5- 5-6-7"),
         [lines("It costs 1,000.50 dollars .", "Pi is 3.14 , e is 2.71 .", "1 . .5 1 - 2 x-1 2 - a , b 1 , a",
                "U.S.A. 10.000,00 1,2,3 -5 5 - 5-6-7")]),
        ("dashes", lines("a well-known e-mail \u2014 sent \u2013 today", "state-of-the-art - ok",
                         "--x x-- -x- 3-", "co-operate"),
         [lines("a well - known e - mail \u2014 sent \u2013 today", "state-of-the-art-ok", "- - x x - -",
                "co - operate")]),
        ("apostrophes", lines("don't stop 'quoted' rock 'n' roll", "it\u2019s John's", "''' ' ''"),
         [lines("do n't stop ' quoted ' rock ' n ' roll", "it\u2019s John 's", "' ' '")]),
        ("unicode_ws", lines("a\u00a0b\u3000c\u2028d\x1ce", "x\x85y\u2000z\u205f w\u202f", "p\u200bq r\u180es",
                             "tail\u00a0\u3000", "\u2029lead", "f\x1d\x1e\x1fg"),
         [lines("a b c d e", "x y z w", "p\u200bq r\u180es", "tail", "lead", "f g")]),
        ("tabs", lines("a\tb\t\tc", "\tleading and trailing\t", "x\x0by\x0cz"),
         [lines("a b c", "leading and trailing", "x y z")]),
        ("cjk", lines("\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8\u3002", "\u3053\u308c\u306f\u30da\u30f3\u3067\u3059\u3002",
                      "\ud55c\uad6d\uc5b4 \ubb38\uc7a5 \uc785\ub2c8\ub2e4.", "\u4e2d\u6587\uff0c\u6807\u70b9\uff01 abc"),
         [lines("\u6211\u7231\u5317\u4eac\u3002", "\u3053\u308c\u306f \u30da\u30f3 \u3067\u3059 \u3002",
                "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4 .", "\u4e2d\u6587 \uff0c \u6807\u70b9 \uff01 abc")]),
        ("emoji", lines("I \u2764\ufe0f pizza \U0001f355!", "family: \U0001f469\u200d\U0001f469\u200d\U0001f467 ok",
                        "\U0001f600\U0001f600 \U0001f600"),
         [lines("I \u2764\ufe0f pizza \U0001f355 !", "family : \U0001f469\u200d\U0001f469\u200d\U0001f467 ok",
                "\U0001f600 \U0001f600\U0001f600")]),
        ("combining", lines("caf\u00e9 na\u00efve", "cafe\u0301 nai\u0308ve", "\u0301leading mark"),
         [lines("caf\u00e9 na\u00efve", "caf\u00e9 na\u00efve", "\u0301leading mark")]),
        ("german", lines("Ein Mann l\u00e4uft \u00fcber die Stra\u00dfe.", "\u00c4rger, \u00d6l und \u00dcbel.",
                         "Gr\u00fc\u00dfe aus K\u00f6ln!"),
         [lines("Ein Mann l\u00e4uft \u00fcber die Strasse.", "\u00c4rger, \u00d6l und \u00dcbel.",
                "Viele Gr\u00fc\u00dfe aus K\u00f6ln !")]),
        ("long_line", lines(long_hyp, "short one"), [lines(long_ref, "short one .")]),
        ("only_spaces", lines("     ", "a b", " \t \u3000 "), [lines("x y", "a b", "   ")]),
        ("crlf", "two men talk .\r\nthe dog barks\r\n\r\n", ["two men are talking .\r\nthe dog barks\r\nok\r\n"]),
        ("cr_mid", lines("a\rb c", "x \r y"), [lines("a b c", "x y")]),
        ("bom", "\ufeffthe first line\nsecond line\n", ["the first line\n\ufeffsecond line\n"]),
        ("no_final_newline", "a b c d e\nf g h", ["a b c d e\nf g h i"]),
        ("short_corpus", lines("hello world"), [lines("hello world")]),
        ("three_tokens", lines("a b c"), [lines("a b c")]),
        ("no_matches", lines("completely different words here", "zzz"), [lines("nothing in common at all", "yyy")]),
        ("zero_4gram", lines("the cat sat on the mat today"), [lines("the cat sat under the mat today")]),
        ("zero_34gram", lines("a b x c d y e f"), [lines("a b c d e f")]),
        ("brevity", lines("the cat", "a dog ran"), [lines("the cat sat on the mat", "a dog ran away quickly")]),
        ("longer_hyp", lines("the the cat cat sat sat on on the mat mat"), [lines("the cat sat on the mat")]),
        ("clipping", lines("the the the the the the the"), [lines("the cat is on the mat"), lines("there is a cat on the mat")]),
        ("random_2refs", rc_hyp, [rc_ref0, rc_ref1]),
        ("fuzz", fz_hyp, [fz_ref0, fz_ref1]),
        ("fuzz_small", fz2_hyp, [fz2_ref0]),
    ]


# Strings for the tokenizer unit test (newlines included: the API accepts them, files never have them).
TOK_STRINGS = [
    "", " ", "a", "Hello, world!", "It's 1,000.50 dollars.", "3.14 .5 5. 1,2 a,b ,a a, .a a.",
    "1-2 a-b -1 1- --- 1--2", "<skipped>", "a<skipped>b", "<skip<skipped>ped>", "&lt;skipped&gt;",
    "&quot;&amp;&lt;&gt;", "&amp;quot; &amp;lt;", "&AMP; &quot &#39; &apos;", "no & entity",
    "line-\nbreak", "two\nlines", "-\n-\n", "x\r\ny", "{|}~[\\]^_` !\"#$%&()*+:;<=>?@/",
    "'quote' \"dq\"", "a\u00a0b\u3000c\u2028d\x1ce\x85f", "\u200bzero\u200bwidth", "\u180emongolian",
    "caf\u00e9, na\u00efve.", "cafe\u0301.", "\u4e2d\u6587\u3002\u4e2d\u6587\uff0c", "\U0001f600.\U0001f600,1",
    "\u0661.\u0662 \u0661,5 \u00b2.", "\u00e4.\u00e4", "...,,,", "1...2,,,3", "a.1 1.a .1. ,1,",
    "e.g. i.e. U.S.", "\t tab \t", "   many   spaces   ", "\ufeffbom", "end with period.",
    "10-20-30", "x--y", "\u2014\u2013-", "C++ C# .NET", "http://example.com/a?b=c&d=e",
    "email: a.b@c.de", "$5.00, 5%, #1", "(1,000)", "[1.5]", "1.5.", "5,-", "-5,-5.-5",
]


def read_like_cli(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        return [line.rstrip() for line in f]


def cli_line(sacrebleu_path, metric, ref_paths, hyp_path=None, stdin_path=None):
    cmd = [sys.executable, "-c", BOOT + "from sacrebleu.sacrebleu import main; main()", *ref_paths,
           "-m", metric, "-f", "text", "-w", "2", "-q"]
    if hyp_path:
        cmd += ["-i", hyp_path]
    env = dict(os.environ, PYTHONPATH=sacrebleu_path, NO_COLOR="1")
    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.run(cmd, stdin=stdin, capture_output=True, env=env)
    if proc.returncode != 0:
        # e.g. a lone "\r" on stdin ends a line (universal newlines), so the line counts differ.
        return f"error: exit {proc.returncode}"
    out = proc.stdout.decode()
    # "BLEU|nrefs:1|case:mixed|...|version:2.6.0 = 48.89 ..." -> "BLEU = 48.89 ..."
    return re.sub(r"^(\S+?)\|\S* = ", r"\1 = ", out.rstrip("\n"))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SACREBLEU_PATH", "/tmp/sacrebleu")
    if not os.path.isfile(os.path.join(path, "sacrebleu", "metrics", "bleu.py")):
        print(f"bleu_fixtures.py: no sacrebleu checkout at {path!r}; skipped (see the header)", file=sys.stderr)
        return 0
    BLEU, CHRF, Tokenizer13a = load_sacrebleu(path)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))

    records = []
    stdin_cases = {"guide7", "cr_mid", "crlf", "multi_ref", "fuzz_small"}
    for name, hyp_text, ref_texts in make_cases():
        hyp_path = os.path.join(OUT, name + ".hyp")
        with open(hyp_path, "w", encoding="utf-8", newline="") as f:
            f.write(hyp_text)
        ref_paths = []
        for i, t in enumerate(ref_texts):
            ref_paths.append(os.path.join(OUT, f"{name}.ref{i}"))
            with open(ref_paths[-1], "w", encoding="utf-8", newline="") as f:
                f.write(t)
        hyps = read_like_cli(hyp_path)
        refs = [read_like_cli(p) for p in ref_paths]
        assert all(len(r) == len(hyps) for r in refs), name

        bleu = str(BLEU().corpus_score(hyps, refs))
        chrf = str(CHRF().corpus_score(hyps, refs))
        assert cli_line(path, "bleu", ref_paths, hyp_path) == bleu, (name, cli_line(path, "bleu", ref_paths, hyp_path), bleu)
        assert cli_line(path, "chrf", ref_paths, hyp_path) == chrf, name
        records.append((name, "refs", str(len(refs))))
        records.append((name, "bleu", bleu))
        records.append((name, "chrf", chrf))
        if len(hyps) <= 50:
            sent_metric = BLEU(effective_order=True)
            for i, h in enumerate(hyps):
                records.append((name, "sent", str(sent_metric.sentence_score(h, [r[i] for r in refs]))))
            for i, h in enumerate(hyps):
                records.append((name, "sentchrf", str(CHRF().sentence_score(h, [r[i] for r in refs]))))
        if name in stdin_cases:
            records.append((name, "stdin", cli_line(path, "bleu", ref_paths, stdin_path=hyp_path)))
        print(f"{name:26s} {bleu}")

    with open(os.path.join(OUT, "expected.txt"), "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            assert all("\t" not in x and "\n" not in x for x in r)
            f.write("\t".join(r) + "\n")

    tok = Tokenizer13a()
    with open(os.path.join(OUT, "tok13a.json"), "w", encoding="utf-8") as f:
        json.dump([{"in": s, "out": tok(s)} for s in TOK_STRINGS], f, ensure_ascii=False, indent=0)
        f.write("\n")

    with open(os.path.join(OUT, "whitespace.txt"), "w") as f:
        for c in range(0x110000):
            if chr(c).isspace():
                f.write(f"{c:04x}\n")
    print(f"wrote {len(records)} records to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
