/* data/toy.c - the toy German -> English grammar and its generator (see data/toy.h, docs/data.md).
 *
 * A sentence is first drawn as a structure (clause type, subject/object noun phrases, verb, tense,
 * negation, adverb, prepositional phrase), then rendered twice: German with its cases, endings and
 * word order, English with its own order and do/have/will support. Choices that would make the
 * German ambiguous are avoided (no possessive "ihr" = her/their, no accusative "sie"), so that the
 * English is a function of the German string.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "data/toy.h"

/* ---------------------------------------------------------------- lexicon */

/* Noun classes, used to keep verb-object and preposition-object pairs sensible. */
enum { C_ANIM = 1, C_THING = 2, C_FOOD = 4, C_READ = 8, C_PLACE = 16, C_OPEN = 32, C_SURF = 64, C_SONG = 128 };
enum { G_M, G_F, G_N, G_PL };
enum { NOM, ACC, DAT, GEN };

typedef struct noun_t {
    const char *de, *de_pl;
    int g;
    const char *en, *en_pl;
    unsigned cls;
} noun_t;

static const noun_t nouns[] = {
    {"Mann", "Männer", G_M, "man", "men", C_ANIM},
    {"Hund", "Hunde", G_M, "dog", "dogs", C_ANIM},
    {"Vater", "Väter", G_M, "father", "fathers", C_ANIM},
    {"Lehrer", "Lehrer", G_M, "teacher", "teachers", C_ANIM},
    {"Bruder", "Brüder", G_M, "brother", "brothers", C_ANIM},
    {"Vogel", "Vögel", G_M, "bird", "birds", C_ANIM},
    {"Koch", "Köche", G_M, "cook", "cooks", C_ANIM},
    {"Arzt", "Ärzte", G_M, "doctor", "doctors", C_ANIM},
    {"Freund", "Freunde", G_M, "friend", "friends", C_ANIM},
    {"Frau", "Frauen", G_F, "woman", "women", C_ANIM},
    {"Katze", "Katzen", G_F, "cat", "cats", C_ANIM},
    {"Mutter", "Mütter", G_F, "mother", "mothers", C_ANIM},
    {"Schwester", "Schwestern", G_F, "sister", "sisters", C_ANIM},
    {"Tochter", "Töchter", G_F, "daughter", "daughters", C_ANIM},
    {"Kind", "Kinder", G_N, "child", "children", C_ANIM},
    {"Mädchen", "Mädchen", G_N, "girl", "girls", C_ANIM},
    {"Pferd", "Pferde", G_N, "horse", "horses", C_ANIM},
    {"Schaf", "Schafe", G_N, "sheep", "sheep", C_ANIM},
    {"Tisch", "Tische", G_M, "table", "tables", C_SURF},
    {"Stuhl", "Stühle", G_M, "chair", "chairs", C_SURF | C_THING},
    {"Ball", "Bälle", G_M, "ball", "balls", C_THING},
    {"Apfel", "Äpfel", G_M, "apple", "apples", C_THING | C_FOOD},
    {"Brief", "Briefe", G_M, "letter", "letters", C_THING | C_READ | C_OPEN},
    {"Schlüssel", "Schlüssel", G_M, "key", "keys", C_THING},
    {"Kuchen", "Kuchen", G_M, "cake", "cakes", C_THING | C_FOOD},
    {"Hut", "Hüte", G_M, "hat", "hats", C_THING},
    {"Garten", "Gärten", G_M, "garden", "gardens", C_PLACE},
    {"Tür", "Türen", G_F, "door", "doors", C_OPEN},
    {"Blume", "Blumen", G_F, "flower", "flowers", C_THING},
    {"Tasche", "Taschen", G_F, "bag", "bags", C_THING | C_OPEN},
    {"Zeitung", "Zeitungen", G_F, "newspaper", "newspapers", C_THING | C_READ},
    {"Stadt", "Städte", G_F, "city", "cities", C_PLACE},
    {"Schule", "Schulen", G_F, "school", "schools", C_PLACE},
    {"Kirche", "Kirchen", G_F, "church", "churches", C_PLACE},
    {"Lampe", "Lampen", G_F, "lamp", "lamps", C_THING},
    {"Birne", "Birnen", G_F, "pear", "pears", C_THING | C_FOOD},
    {"Karte", "Karten", G_F, "map", "maps", C_THING | C_READ},
    {"Buch", "Bücher", G_N, "book", "books", C_THING | C_READ | C_OPEN},
    {"Haus", "Häuser", G_N, "house", "houses", C_PLACE},
    {"Fenster", "Fenster", G_N, "window", "windows", C_OPEN},
    {"Bild", "Bilder", G_N, "picture", "pictures", C_THING},
    {"Auto", "Autos", G_N, "car", "cars", 0},
    {"Glas", "Gläser", G_N, "glass", "glasses", C_THING},
    {"Schiff", "Schiffe", G_N, "ship", "ships", 0},
    {"Dorf", "Dörfer", G_N, "village", "villages", C_PLACE},
    {"Lied", "Lieder", G_N, "song", "songs", C_SONG},
    {"Geschenk", "Geschenke", G_N, "present", "presents", C_THING | C_OPEN},
    {"Bett", "Betten", G_N, "bed", "beds", C_SURF},
    {"Ei", "Eier", G_N, "egg", "eggs", C_THING | C_FOOD},
};
enum { N_NOUNS = sizeof nouns / sizeof nouns[0] };

/* Adjectives: attributive use for animates (A) and/or things (I). */
enum { ADJ_A = 1, ADJ_I = 2 };
static const struct {
    const char *de, *en;
    unsigned use;
} adjs[] = {
    {"alt", "old", ADJ_A | ADJ_I},     {"jung", "young", ADJ_A},       {"groß", "big", ADJ_A | ADJ_I},
    {"klein", "small", ADJ_A | ADJ_I}, {"rot", "red", ADJ_I},          {"blau", "blue", ADJ_I},
    {"grün", "green", ADJ_I},          {"schwarz", "black", ADJ_A | ADJ_I}, {"weiß", "white", ADJ_A | ADJ_I},
    {"neu", "new", ADJ_I},             {"schön", "beautiful", ADJ_A | ADJ_I}, {"gut", "good", ADJ_A | ADJ_I},
    {"schnell", "fast", ADJ_A},        {"müde", "tired", ADJ_A},       {"glücklich", "happy", ADJ_A},
    {"hungrig", "hungry", ADJ_A},      {"laut", "loud", ADJ_A},        {"krank", "sick", ADJ_A},
    {"teuer", "expensive", ADJ_I},
};
enum { N_ADJS = sizeof adjs / sizeof adjs[0] };

/* Verbs: "infinitive ich du er ihr participle aux | base 3sg past participle" (wir/sie = the
 * infinitive); '_' joins English words. kind: 0 intransitive, 1 transitive, 2 dative + accusative. */
static const struct {
    const char *forms;
    int kind;
    unsigned obj;
} verb_defs[] = {
    {"sehen sehe siehst sieht seht gesehen h | see sees saw seen", 1, ~0u},
    {"kaufen kaufe kaufst kauft kauft gekauft h | buy buys bought bought", 1, C_THING | C_FOOD},
    {"lesen lese liest liest lest gelesen h | read reads read read", 1, C_READ},
    {"finden finde findest findet findet gefunden h | find finds found found", 1, ~0u},
    {"haben habe hast hat habt gehabt h | have has had had", 1, C_ANIM | C_THING},
    {"brauchen brauche brauchst braucht braucht gebraucht h | need needs needed needed", 1, C_THING | C_FOOD},
    {"tragen trage trägst trägt tragt getragen h | carry carries carried carried", 1, C_THING},
    {"essen esse isst isst esst gegessen h | eat eats ate eaten", 1, C_FOOD},
    {"bringen bringe bringst bringt bringt gebracht h | bring brings brought brought", 1, C_THING},
    {"malen male malst malt malt gemalt h | paint paints painted painted", 1, ~0u},
    {"lieben liebe liebst liebt liebt geliebt h | love loves loved loved", 1, C_ANIM | C_FOOD | C_SONG},
    {"besuchen besuche besuchst besucht besucht besucht h | visit visits visited visited", 1, C_ANIM | C_PLACE},
    {"öffnen öffne öffnest öffnet öffnet geöffnet h | open opens opened opened", 1, C_OPEN},
    {"waschen wasche wäschst wäscht wascht gewaschen h | wash washes washed washed", 1, C_ANIM | C_THING},
    {"suchen suche suchst sucht sucht gesucht h | look_for looks_for looked_for looked_for", 1, ~0u},
    {"hören höre hörst hört hört gehört h | hear hears heard heard", 1, C_ANIM | C_SONG},
    {"singen singe singst singt singt gesungen h | sing sings sang sung", 1, C_SONG},
    {"schlafen schlafe schläfst schläft schlaft geschlafen h | sleep sleeps slept slept", 0, 0},
    {"laufen laufe läufst läuft lauft gelaufen s | run runs ran run", 0, 0},
    {"kommen komme kommst kommt kommt gekommen s | come comes came come", 0, 0},
    {"gehen gehe gehst geht geht gegangen s | go goes went gone", 0, 0},
    {"spielen spiele spielst spielt spielt gespielt h | play plays played played", 0, 0},
    {"lachen lache lachst lacht lacht gelacht h | laugh laughs laughed laughed", 0, 0},
    {"arbeiten arbeite arbeitest arbeitet arbeitet gearbeitet h | work works worked worked", 0, 0},
    {"warten warte wartest wartet wartet gewartet h | wait waits waited waited", 0, 0},
    {"schwimmen schwimme schwimmst schwimmt schwimmt geschwommen s | swim swims swam swum", 0, 0},
    {"tanzen tanze tanzt tanzt tanzt getanzt h | dance dances danced danced", 0, 0},
    {"geben gebe gibst gibt gebt gegeben h | give gives gave given", 2, C_THING | C_FOOD},
    {"zeigen zeige zeigst zeigt zeigt gezeigt h | show shows showed shown", 2, C_THING | C_READ},
    {"schicken schicke schickst schickt schickt geschickt h | send sends sent sent", 2, C_THING | C_READ},
};
enum { N_VERBS = sizeof verb_defs / sizeof verb_defs[0] };

/* Verbs of saying/thinking that take a "dass" clause. */
static const struct {
    const char *forms;
} say_defs[] = {
    {"sagen sage sagst sagt sagt gesagt h | say says said said"},
    {"glauben glaube glaubst glaubt glaubt geglaubt h | believe believes believed believed"},
    {"wissen weiß weißt weiß wisst gewusst h | know knows knew known"},
    {"hoffen hoffe hoffst hofft hofft gehofft h | hope hopes hoped hoped"},
};
enum { N_SAY = sizeof say_defs / sizeof say_defs[0] };

/* A parsed verb: de[6] by person (ich du er/sie/es wir ihr sie), participle, aux; English forms. */
typedef struct verb_t {
    char de[6][16], part[16];
    int aux_sein;
    char en[4][16]; /* base, 3sg, past, participle */
} verb_t;

static void parse_verb(const char *s, verb_t *v) {
    char w[12][16];
    int n = 0;
    const char *p = s;
    while (*p && n < 12) {
        while (*p == ' ') p++;
        int k = 0;
        while (*p && *p != ' ' && k < 15) w[n][k++] = *p == '_' ? ' ' : *p, p++;
        w[n][k] = '\0';
        if (k) n++;
    }
    CF_ASSERT(n == 12 && strcmp(w[7], "|") == 0, "bad verb entry '%s'", s);
    strcpy(v->de[0], w[1]);
    strcpy(v->de[1], w[2]);
    strcpy(v->de[2], w[3]);
    strcpy(v->de[3], w[0]);
    strcpy(v->de[4], w[4]);
    strcpy(v->de[5], w[0]);
    strcpy(v->part, w[5]);
    v->aux_sein = w[6][0] == 's';
    for (int i = 0; i < 4; i++) strcpy(v->en[i], w[8 + i]);
}

/* Subject pronouns: person slot for the verb (0 ich, 1 du, 2 3sg, 3 wir, 4 ihr, 5 3pl). */
static const struct {
    const char *de, *en, *de_acc, *de_dat, *en_obj;
    int person;
} prons[] = {
    {"ich", "I", "mich", "mir", "me", 0},  {"du", "you", "dich", "dir", "you", 1}, {"er", "he", "ihn", "ihm", "him", 2},
    {"sie", "she", NULL, NULL, NULL, 2},   {"es", "it", NULL, NULL, NULL, 2},     {"wir", "we", "uns", "uns", "us", 3},
    {"ihr", "you", NULL, NULL, NULL, 4},   {"sie", "they", NULL, NULL, NULL, 5},
    {"wer", "who", NULL, NULL, NULL, 2}, /* only as the subject of a wer-question */
};
enum { N_PRONS = 8, PRON_WER = 8 };

static const char *const numbers_de[] = {"zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwölf"};
static const char *const numbers_en[] = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"};
static const char *const poss_de[] = {"mein", "dein", "sein", "unser"};
static const char *const poss_en[] = {"my", "your", "his", "our"};

/* Prepositions (all with the dative except für/ohne) and the noun classes they take. */
static const struct {
    const char *de, *en;
    int cas;
    unsigned cls;
} preps[] = {
    {"in", "in", DAT, C_PLACE},      {"mit", "with", DAT, C_ANIM},         {"neben", "next to", DAT, C_ANIM | C_PLACE},
    {"hinter", "behind", DAT, C_PLACE | C_SURF}, {"vor", "in front of", DAT, C_PLACE}, {"auf", "on", DAT, C_SURF},
    {"unter", "under", DAT, C_SURF}, {"für", "for", ACC, C_ANIM},          {"ohne", "without", ACC, C_ANIM},
};
enum { N_PREPS = sizeof preps / sizeof preps[0] };

/* ---------------------------------------------------------------- noun phrases */

enum { D_DEF, D_INDEF, D_KEIN, D_POSS, D_NUM, D_BARE, D_MANY };

typedef struct np {
    int pron;     /* >= 0: a pronoun (index into prons), the rest unused */
    int noun, det, which, adj; /* which: possessive or number index; adj -1 = none */
    bool pl;
    int gen_noun, gen_adj; /* genitive possessor (masculine/neuter singular, definite), -1 = none */
} np;

static const char *const def_art[4][4] = {
    {"der", "die", "das", "die"}, {"den", "die", "das", "die"}, {"dem", "der", "dem", "den"}, {"des", "der", "des", "der"}};
/* Endings of ein/kein/mein: [case][m f n pl] */
static const char *const ein_end[4][4] = {{"", "e", "", "e"}, {"en", "e", "", "e"}, {"em", "er", "em", "en"}, {"es", "er", "es", "er"}};
/* Adjective endings: weak (after der), mixed (after ein-words), strong (no article, plural only here). */
static const char *const adj_weak[4][4] = {{"e", "e", "e", "en"}, {"en", "e", "e", "en"}, {"en", "en", "en", "en"}, {"en", "en", "en", "en"}};
static const char *const adj_mixed[4][4] = {{"er", "e", "es", "en"}, {"en", "e", "es", "en"}, {"en", "en", "en", "en"}, {"en", "en", "en", "en"}};
static const char *const adj_strong_pl[4] = {"e", "e", "en", "er"};

/* A growing sentence: space-separated words, with a count of words (punctuation excluded). */
typedef struct sent {
    char *buf;
    size_t cap, n;
    int words;
} sent;

static void put(sent *s, const char *w) {
    size_t k = strlen(w);
    bool punct = k == 1 && strchr(".,?", w[0]);
    if (s->n && s->n + 1 < s->cap) s->buf[s->n++] = ' ';
    if (s->n + k < s->cap) memcpy(s->buf + s->n, w, k), s->n += k;
    s->buf[s->n < s->cap ? s->n : s->cap - 1] = '\0';
    if (!punct) /* "next to", "in front of", "look for" count as several words */
        for (const char *p = w; *p; p++) s->words += p == w || p[-1] == ' ';
}

static void put2(sent *s, const char *a, const char *b) {
    char w[64];
    snprintf(w, sizeof w, "%s%s", a, b);
    put(s, w);
}

/* German adjective + ending ("müde" + "en" -> "müden": a stem ending in e drops it). */
static void put_adj_de(sent *s, int adj, const char *end) {
    char stem[32];
    snprintf(stem, sizeof stem, "%s", adjs[adj].de);
    size_t k = strlen(stem);
    if (k && stem[k - 1] == 'e') stem[k - 1] = '\0';
    if (strcmp(stem, "teuer") == 0) strcpy(stem, "teur"); /* teuer -> teure */
    put2(s, stem, end);
}

static const char *noun_de(const noun_t *n, bool pl, int cas, char *tmp) {
    if (pl) {
        size_t k = strlen(n->de_pl);
        if (cas == DAT && n->de_pl[k - 1] != 'n' && n->de_pl[k - 1] != 's') {
            sprintf(tmp, "%sn", n->de_pl);
            return tmp;
        }
        return n->de_pl;
    }
    if (cas == GEN && n->g != G_F) {
        size_t k = strlen(n->de);
        const char *e = n->de + k - 2;
        bool short_s = strchr("aeiou", n->de[k - 1]) || strcmp(e, "er") == 0 || strcmp(e, "el") == 0 || strcmp(e, "en") == 0;
        sprintf(tmp, "%s%s", n->de, short_s ? "s" : "es");
        return tmp;
    }
    return n->de;
}

static void np_de(sent *s, const np *x, int cas) {
    if (x->pron >= 0) {
        put(s, cas == NOM ? prons[x->pron].de : cas == ACC ? prons[x->pron].de_acc : prons[x->pron].de_dat);
        return;
    }
    const noun_t *n = &nouns[x->noun];
    int g = x->pl ? G_PL : n->g;
    char tmp[48];
    const char *const(*adj_end)[4] = adj_mixed;
    switch (x->det) {
    case D_DEF: put(s, def_art[cas][g]); adj_end = adj_weak; break;
    case D_INDEF: put2(s, "ein", ein_end[cas][g]); break;
    case D_KEIN: put2(s, "kein", ein_end[cas][g]); break;
    case D_POSS: put2(s, poss_de[x->which], ein_end[cas][g]); break;
    case D_NUM: put(s, numbers_de[x->which]); adj_end = NULL; break;
    case D_MANY: put2(s, "viel", adj_strong_pl[cas]); adj_end = NULL; break;
    default: adj_end = NULL; break; /* bare plural */
    }
    if (x->adj >= 0) put_adj_de(s, x->adj, adj_end ? adj_end[cas][g] : adj_strong_pl[cas]);
    put(s, noun_de(n, x->pl, cas, tmp));
    if (x->gen_noun >= 0) {
        put(s, "des");
        if (x->gen_adj >= 0) put_adj_de(s, x->gen_adj, "en");
        put(s, noun_de(&nouns[x->gen_noun], false, GEN, tmp));
    }
}

static bool starts_vowel(const char *w) { return strchr("aeiou", w[0]) != NULL; }

static void np_en(sent *s, const np *x, bool object) {
    if (x->pron >= 0) {
        put(s, object ? prons[x->pron].en_obj : prons[x->pron].en);
        return;
    }
    const noun_t *n = &nouns[x->noun];
    const char *adj = x->adj >= 0 ? adjs[x->adj].en : NULL;
    const char *head = x->pl ? n->en_pl : n->en;
    if (x->gen_noun >= 0) { /* "das Buch des alten Mannes" -> "the old man's book" */
        put(s, "the");
        if (x->gen_adj >= 0) put(s, adjs[x->gen_adj].en);
        put2(s, nouns[x->gen_noun].en, "'s");
    } else {
        switch (x->det) {
        case D_DEF: put(s, "the"); break;
        case D_INDEF: put(s, starts_vowel(adj ? adj : head) ? "an" : "a"); break;
        case D_KEIN: put(s, "no"); break;
        case D_POSS: put(s, poss_en[x->which]); break;
        case D_NUM: put(s, numbers_en[x->which]); break;
        case D_MANY: put(s, "many"); break;
        default: break;
        }
    }
    if (adj) put(s, adj);
    put(s, head);
}

static bool chance(cf_rng *r, double p) { return cf_rng_uniform_f64(r) < p; }
static int pick(cf_rng *r, int n) { return (int)cf_rng_below(r, (uint64_t)n); }

static int pick_noun(cf_rng *r, unsigned cls) {
    for (;;) {
        int k = pick(r, N_NOUNS);
        if (nouns[k].cls & cls) return k;
    }
}

static int pick_adj(cf_rng *r, int noun) {
    unsigned use = nouns[noun].cls & C_ANIM ? ADJ_A : ADJ_I;
    for (;;) {
        int k = pick(r, N_ADJS);
        if (adjs[k].use & use) return k;
    }
}

/* A full noun phrase of class cls; `simple` restricts to definite/possessive singular or plural. */
static np make_np(cf_rng *r, unsigned cls, bool simple) {
    np x = {.pron = -1, .adj = -1, .gen_noun = -1, .gen_adj = -1};
    x.noun = pick_noun(r, cls);
    x.pl = chance(r, 0.3);
    double u = cf_rng_uniform_f64(r);
    if (simple) x.det = u < 0.75 ? D_DEF : D_POSS;
    else if (!x.pl) x.det = u < 0.5 ? D_DEF : u < 0.8 ? D_INDEF : D_POSS;
    else x.det = u < 0.4 ? D_DEF : u < 0.55 ? D_POSS : u < 0.75 ? D_NUM : u < 0.85 ? D_MANY : D_BARE;
    if (x.det == D_POSS) x.which = pick(r, 4);
    if (x.det == D_NUM) x.which = pick(r, 11);
    if (chance(r, 0.35)) x.adj = pick_adj(r, x.noun);
    return x;
}

/* ---------------------------------------------------------------- clauses */

enum { T_PRES, T_PERF };
enum { ADV_NONE, ADV_HEUTE, ADV_GESTERN, ADV_MORGEN };
static const char *const adv_de[] = {NULL, "heute", "gestern", "morgen"};
static const char *const adv_en[] = {NULL, "today", "yesterday", "tomorrow"};

typedef struct clause {
    np subj;
    int verb;       /* index into verb_defs, or -1 for the copula with pred_adj */
    int pred_adj;
    int tense, adv;
    bool neg;       /* "nicht" (negation by "kein" lives in the object's determiner) */
    bool has_io, has_obj, has_pp;
    np io, obj, pp_np;
    int prep;
} clause;

static verb_t verbs[N_VERBS], says[N_SAY];
static bool lexicon_ready;

static void lexicon_init(void) {
    if (lexicon_ready) return;
    for (int i = 0; i < N_VERBS; i++) parse_verb(verb_defs[i].forms, &verbs[i]);
    for (int i = 0; i < N_SAY; i++) parse_verb(say_defs[i].forms, &says[i]);
    lexicon_ready = true;
}

static int person_of(const np *x) { return x->pron >= 0 ? prons[x->pron].person : x->pl ? 5 : 2; }

static bool is_definite(const np *x) { return x->pron >= 0 || x->det == D_DEF || x->det == D_POSS; }

static clause make_clause(cf_rng *r, bool allow_adv) {
    clause c = {.verb = -1, .pred_adj = -1};
    if (chance(r, 0.3)) c.subj = (np){.pron = pick(r, N_PRONS), .adj = -1, .gen_noun = -1, .gen_adj = -1};
    else c.subj = make_np(r, C_ANIM, false);
    if (c.subj.pron < 0 && (c.subj.det == D_BARE)) c.subj.det = D_DEF; /* bare plural subjects read oddly */
    c.tense = chance(r, 0.5) ? T_PERF : T_PRES;
    if (chance(r, 0.12)) {
        c.verb = -1;
        c.pred_adj = pick_adj(r, c.subj.pron >= 0 ? 0 : c.subj.noun); /* pronoun subjects are animate */
        while (!(adjs[c.pred_adj].use & ADJ_A)) c.pred_adj = pick(r, N_ADJS);
    } else {
        c.verb = pick(r, N_VERBS);
    }
    int kind = c.verb >= 0 ? verb_defs[c.verb].kind : -1;
    if (kind == 2) {
        c.has_io = true;
        if (chance(r, 0.25)) {
            int p;
            do p = pick(r, N_PRONS);
            while (!prons[p].de_dat || prons[p].person == person_of(&c.subj));
            c.io = (np){.pron = p, .adj = -1, .gen_noun = -1, .gen_adj = -1};
        } else {
            c.io = make_np(r, C_ANIM, true);
        }
    }
    if (kind >= 1) {
        c.has_obj = true;
        unsigned cls = verb_defs[c.verb].obj;
        if (kind == 1 && (cls & C_ANIM) && chance(r, 0.15)) {
            int p;
            do p = pick(r, N_PRONS);
            while (!prons[p].de_acc || prons[p].person == person_of(&c.subj));
            c.obj = (np){.pron = p, .adj = -1, .gen_noun = -1, .gen_adj = -1};
        } else {
            c.obj = make_np(r, cls, false);
            if (c.obj.det == D_DEF && !c.obj.pl && chance(r, 0.12)) {
                do c.obj.gen_noun = pick_noun(r, C_ANIM);
                while (nouns[c.obj.gen_noun].g == G_F);
                if (chance(r, 0.3)) c.obj.gen_adj = pick_adj(r, c.obj.gen_noun);
            }
        }
    }
    if (kind != 2 && c.verb >= 0 && chance(r, 0.3)) {
        c.has_pp = true;
        c.prep = pick(r, N_PREPS);
        c.pp_np = make_np(r, preps[c.prep].cls, true);
    }
    if (chance(r, 0.25)) {
        if (c.has_obj && c.obj.pron < 0 && (c.obj.det == D_INDEF || c.obj.det == D_BARE)) c.obj.det = D_KEIN;
        else if (!c.has_obj || is_definite(&c.obj)) c.neg = true; /* numbers and "viele" stay positive */
    }
    if (allow_adv && chance(r, 0.3)) {
        c.adv = 1 + pick(r, 3);
        if (c.adv == ADV_GESTERN) c.tense = T_PERF; /* English simple past */
        if (c.adv == ADV_MORGEN) c.tense = T_PRES;  /* English "will" */
    }
    return c;
}

/* ---------------------------------------------------------------- rendering */

static const char *const sein_de[6] = {"bin", "bist", "ist", "sind", "seid", "sind"};
static const char *const haben_de[6] = {"habe", "hast", "hat", "haben", "habt", "haben"};

static const char *finite_de(const clause *c) {
    int p = person_of(&c->subj);
    if (c->tense == T_PERF) return c->verb < 0 || verbs[c->verb].aux_sein ? sein_de[p] : haben_de[p];
    return c->verb < 0 ? sein_de[p] : verbs[c->verb].de[p];
}

static const char *nonfinite_de(const clause *c) {
    if (c->tense != T_PERF) return NULL;
    return c->verb < 0 ? "gewesen" : verbs[c->verb].part;
}

/* Everything between the finite verb and the end: pronoun objects, adverb, noun objects, nicht,
 * predicate adjective, prepositional phrase. */
static void middle_de(sent *s, const clause *c, bool adv_here) {
    if (c->has_obj && c->obj.pron >= 0) np_de(s, &c->obj, ACC);
    if (c->has_io && c->io.pron >= 0) np_de(s, &c->io, DAT);
    if (adv_here && c->adv) put(s, adv_de[c->adv]);
    if (c->has_io && c->io.pron < 0) np_de(s, &c->io, DAT);
    if (c->has_obj && c->obj.pron < 0) np_de(s, &c->obj, ACC);
    if (c->neg) put(s, "nicht");
    if (c->verb < 0) put(s, adjs[c->pred_adj].de);
    if (c->has_pp) {
        const noun_t *n = &nouns[c->pp_np.noun];
        if (preps[c->prep].de[0] == 'i' && c->pp_np.det == D_DEF && !c->pp_np.pl && n->g != G_F) {
            put(s, "im"); /* in dem -> im; the adjective keeps its weak ending */
            if (c->pp_np.adj >= 0) put_adj_de(s, c->pp_np.adj, "en");
            char tmp[48];
            put(s, noun_de(n, false, DAT, tmp));
        } else {
            put(s, preps[c->prep].de);
            np_de(s, &c->pp_np, preps[c->prep].cas);
        }
    }
}

/* German main clause (V2): subject or adverb first, finite verb second, participle last. */
static void main_de(sent *s, const clause *c, bool front_adv) {
    if (front_adv && c->adv) {
        put(s, adv_de[c->adv]);
        put(s, finite_de(c));
        np_de(s, &c->subj, NOM);
        middle_de(s, c, false);
    } else {
        np_de(s, &c->subj, NOM);
        put(s, finite_de(c));
        middle_de(s, c, true);
    }
    const char *nf = nonfinite_de(c);
    if (nf) put(s, nf);
}

/* German subordinate clause: the finite verb goes to the very end. */
static void sub_de(sent *s, const clause *c) {
    np_de(s, &c->subj, NOM);
    middle_de(s, c, true);
    const char *nf = nonfinite_de(c);
    if (nf) put(s, nf);
    put(s, finite_de(c));
}

/* German question: finite verb first (after an optional question word). */
static void question_de(sent *s, const clause *c, const char *wh) {
    if (wh) put(s, wh);
    put(s, finite_de(c));
    if (c->subj.pron != PRON_WER) np_de(s, &c->subj, NOM);
    middle_de(s, c, false);
    const char *nf = nonfinite_de(c);
    if (nf) put(s, nf);
}

static void objects_en(sent *s, const clause *c) {
    if (c->verb < 0) put(s, adjs[c->pred_adj].en);
    if (c->has_io) np_en(s, &c->io, true);
    if (c->has_obj) np_en(s, &c->obj, true);
    if (c->has_pp) {
        put(s, preps[c->prep].en);
        np_en(s, &c->pp_np, true);
    }
}

/* English statement: subject, verb group (do/have/will support), objects, trailing adverb. */
static void statement_en(sent *s, const clause *c, bool front_adv) {
    int p = person_of(&c->subj);
    bool third = p == 2;
    if (front_adv && c->adv) put(s, adv_en[c->adv]);
    np_en(s, &c->subj, false);
    const verb_t *v = c->verb >= 0 ? &verbs[c->verb] : NULL;
    if (c->adv == ADV_MORGEN) {
        put(s, "will");
        if (c->neg) put(s, "not");
        put(s, v ? v->en[0] : "be");
    } else if (c->adv == ADV_GESTERN) {
        if (!v) put(s, p == 0 || third ? "was" : "were");
        else if (c->neg) put(s, "did");
        if (c->neg) put(s, "not");
        if (v) put(s, c->neg ? v->en[0] : v->en[2]);
    } else if (c->tense == T_PERF) {
        put(s, third ? "has" : "have");
        if (c->neg) put(s, "not");
        put(s, v ? v->en[3] : "been");
    } else if (!v) {
        put(s, p == 0 ? "am" : third ? "is" : "are");
        if (c->neg) put(s, "not");
    } else if (c->neg) {
        put(s, third ? "does" : "do");
        put(s, "not");
        put(s, v->en[0]);
    } else {
        put(s, third ? v->en[1] : v->en[0]);
    }
    objects_en(s, c);
    if (!front_adv && c->adv) put(s, adv_en[c->adv]);
}

/* English question: auxiliary, subject, rest ("does the man see ...", "has he seen ...", "is it ..."). */
static void question_en(sent *s, const clause *c, const char *wh) {
    if (wh) put(s, wh);
    if (c->subj.pron == PRON_WER) { /* "who sees the dog": no inversion */
        statement_en(s, c, false);
        return;
    }
    int p = person_of(&c->subj);
    bool third = p == 2;
    const verb_t *v = c->verb >= 0 ? &verbs[c->verb] : NULL;
    if (c->tense == T_PERF) put(s, third ? "has" : "have");
    else if (!v) put(s, p == 0 ? "am" : third ? "is" : "are");
    else put(s, third ? "does" : "do");
    np_en(s, &c->subj, false);
    if (c->neg) put(s, "not");
    if (c->tense == T_PERF) put(s, v ? v->en[3] : "been");
    else if (v) put(s, v->en[0]);
    objects_en(s, c);
}

static const char *const conj_de[] = {"weil", "obwohl"};
static const char *const conj_en[] = {"because", "although"};

void cf_toy_sentence(cf_rng *r, char *de, size_t de_cap, char *en, size_t en_cap) {
    lexicon_init();
    for (;;) {
        sent d = {de, de_cap, 0, 0}, e = {en, en_cap, 0, 0};
        de[0] = en[0] = '\0';
        double u = cf_rng_uniform_f64(r);
        if (u < 0.45) { /* statement, maybe with a time adverb in front (V2 inversion) or inside */
            clause c = make_clause(r, true);
            bool front = chance(r, 0.5);
            main_de(&d, &c, front);
            statement_en(&e, &c, front);
            put(&d, ".");
            put(&e, ".");
        } else if (u < 0.57) { /* yes/no question */
            clause c = make_clause(r, false);
            question_de(&d, &c, NULL);
            question_en(&e, &c, NULL);
            put(&d, "?");
            put(&e, "?");
        } else if (u < 0.70) { /* wh-question */
            clause c = make_clause(r, false);
            int kind = c.verb >= 0 ? verb_defs[c.verb].kind : -1;
            int q = pick(r, 4);
            const char *wde = NULL, *wen = NULL;
            c.neg = false;
            if (c.has_obj && c.obj.det == D_KEIN) c.obj.det = D_INDEF;
            if (q == 0 && kind >= 1) { /* was: the object is asked for */
                c.has_obj = false;
                wde = "was", wen = "what";
            } else if (q == 1 && kind == 1 && (verb_defs[c.verb].obj & C_ANIM)) {
                c.has_obj = false;
                wde = "wen", wen = "who";
            } else if (q == 2 && kind == 0 && !c.has_pp) {
                wde = "wo", wen = "where";
            } else { /* wer: the subject is asked for */
                c.subj = (np){.pron = PRON_WER, .adj = -1, .gen_noun = -1, .gen_adj = -1};
                wde = "wer", wen = NULL;
            }
            question_de(&d, &c, wde);
            question_en(&e, &c, wen);
            put(&d, "?");
            put(&e, "?");
        } else if (u < 0.85) { /* X sagt , dass ... */
            np m;
            if (chance(r, 0.5)) m = (np){.pron = pick(r, N_PRONS), .adj = -1, .gen_noun = -1, .gen_adj = -1};
            else m = make_np(r, C_ANIM, true);
            if (m.pron == 4) m.pron = 2; /* "es sagt" reads oddly: use "er" */
            const verb_t *sv = &says[pick(r, N_SAY)];
            int p = person_of(&m);
            bool perf = chance(r, 0.3);
            np_de(&d, &m, NOM);
            put(&d, perf ? haben_de[p] : sv->de[p]);
            if (perf) put(&d, sv->part);
            put(&d, ",");
            put(&d, "dass");
            np_en(&e, &m, false);
            if (perf) put(&e, p == 2 ? "has" : "have");
            put(&e, perf ? sv->en[3] : p == 2 ? sv->en[1] : sv->en[0]);
            put(&e, "that");
            clause c = make_clause(r, false);
            sub_de(&d, &c);
            statement_en(&e, &c, false);
            put(&d, ".");
            put(&e, ".");
        } else { /* statement , weil/obwohl ... */
            clause a = make_clause(r, false), b = make_clause(r, false);
            int k = pick(r, 2);
            main_de(&d, &a, false);
            put(&d, ",");
            put(&d, conj_de[k]);
            sub_de(&d, &b);
            statement_en(&e, &a, false);
            put(&e, conj_en[k]);
            statement_en(&e, &b, false);
            put(&d, ".");
            put(&e, ".");
        }
        if (d.words >= 3 && d.words <= 20 && e.words >= 3 && e.words <= 20 && d.n + 1 < de_cap && e.n + 1 < en_cap) return;
    }
}

/* ---------------------------------------------------------------- the data set */

cf_toy_opts cf_toy_defaults(void) { return (cf_toy_opts){.seed = 1, .n_train = 20000, .n_valid = 500, .n_test = 500}; }

/* A set of sentence hashes (64-bit; a collision would only drop one more sentence). */
typedef struct hset {
    uint64_t *k;
    size_t mask, n;
} hset;

static bool hset_add(hset *h, uint64_t key) {
    if (2 * (h->n + 1) > h->mask + 1) {
        size_t cap = h->mask ? 2 * (h->mask + 1) : 1 << 16;
        uint64_t *k = cf_xcalloc(cap, sizeof *k);
        for (size_t i = 0; h->k && i <= h->mask; i++) {
            if (!h->k[i]) continue;
            size_t j = h->k[i] & (cap - 1);
            while (k[j]) j = (j + 1) & (cap - 1);
            k[j] = h->k[i];
        }
        free(h->k);
        h->k = k;
        h->mask = cap - 1;
    }
    key = key ? key : 1;
    size_t i = key & h->mask;
    for (; h->k[i]; i = (i + 1) & h->mask)
        if (h->k[i] == key) return false;
    h->k[i] = key;
    h->n++;
    return true;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

int cf_toy_write(const char *dir, const cf_toy_opts *o) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        cf_error_set("%s: cannot create directory: %s", dir, strerror(errno));
        return -1;
    }
    /* test first, then valid, then train: every source is new, so no test/valid source is in train */
    const char *split[3] = {"test", "valid", "train"};
    int64_t count[3] = {o->n_test, o->n_valid, o->n_train};
    cf_rng r = cf_rng_init(o->seed, CF_RNG_STREAM_DATA);
    hset seen = {0};
    char de[512], en[512], path[2][1024];
    int rc = 0;
    for (int k = 0; k < 3 && rc == 0; k++) {
        FILE *f[2];
        for (int side = 0; side < 2; side++) {
            snprintf(path[side], sizeof path[side], "%s/%s.%s", dir, split[k], side ? "en" : "de");
            f[side] = fopen(path[side], "w");
            if (!f[side]) {
                cf_error_set("%s: cannot open for writing: %s", path[side], strerror(errno));
                if (side) fclose(f[0]);
                free(seen.k);
                return -1;
            }
        }
        for (int64_t i = 0; i < count[k];) {
            cf_toy_sentence(&r, de, sizeof de, en, sizeof en);
            if (!hset_add(&seen, hash_str(de))) continue;
            fprintf(f[0], "%s\n", de);
            fprintf(f[1], "%s\n", en);
            i++;
        }
        for (int side = 0; side < 2; side++)
            if (fclose(f[side]) != 0 && rc == 0) {
                cf_error_set("%s: write failed: %s", path[side], strerror(errno));
                rc = -1;
            }
    }
    free(seen.k);
    return rc;
}
