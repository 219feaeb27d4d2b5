"""Spider-style question builders: one real-named table, or two joined on a key.

Spider rows keep the case of string literals (only WikiSQL's ``table_name_N`` rows lower
them) and name columns with their table alias in joins (``T1.name``).
"""

from __future__ import annotations

import random

from ftui.presets.synth.sql_pools import Col
from ftui.presets.synth.sql_tables import LINKS, TABLE_BY_NAME, TABLES, Link, Table
from ftui.presets.synth.sql_words import (
    LEAST, MOST, Cond, Query, Retry, a_label, cond, label, num_value, plural, rel, rels,
    where, with_extras,
)

NAMED = tuple(tb for tb in TABLES if any(c.key for c in tb.cols))


def _key(tb: Table) -> Col:
    return next(c for c in tb.cols if c.key)


def _numeric(tb: Table) -> list[Col]:
    return [c for c in tb.cols if c.numeric and not c.ident]


def _groups(tb: Table) -> list[Col]:
    """Columns worth grouping by: text with a small pool of values."""
    return [c for c in tb.cols if not c.numeric and not c.key
            and c.values not in ("@person", "@title")]


def _asked(tb: Table) -> list[Col]:
    return [c for c in tb.cols if not c.ident]


def _pick_sel(rng: random.Random, tb: Table, avoid: Col | None = None) -> Col:
    key = _key(tb)
    if key is not avoid and rng.random() < 0.6:
        return key
    options = [c for c in _asked(tb) if c is not avoid]
    return rng.choice(options)


def _col(tb: Table, name: str) -> Col:
    return next(c for c in tb.cols if c.name == name)


def _query(question: str, answer: str, tb: Table, cols: list[Col], conds: list[Cond],
           rng: random.Random) -> Query:
    cols = cols + [c.col for c in conds]
    # COUNT(*) alone names no column, but CREATE TABLE needs one
    used = {tb.name: with_extras(rng, cols or [_key(tb)], _asked(tb), 0.25)}
    return Query(question, answer, used, [c.lit for c in conds])


def _maybe_conds(rng: random.Random, tb: Table, avoid: list[Col], chance: float) -> list[Cond]:
    options = [c for c in _asked(tb) if c not in avoid]
    if not options or rng.random() >= chance:
        return []
    return [cond(rng, rng.choice(options))]


def order(rng: random.Random) -> Query:
    tb = rng.choice(NAMED)
    nums = _numeric(tb)
    if not nums:
        raise Retry
    m = rng.choice(nums)
    sel = _pick_sel(rng, tb, avoid=m)
    conds = _maybe_conds(rng, tb, [m, sel, _key(tb)], 0.3)
    es, e = tb.entities, tb.entity
    scope = f"{es} {rels(rng, conds)}" if conds else es
    w = f" WHERE {where(conds)}" if conds else ""
    s, sp, ml = label(sel), plural(sel), label(m)
    desc = rng.random() < 0.6
    top = rng.choice(m.most or MOST) if desc else rng.choice(m.least or LEAST)
    generic = rng.choice(MOST if desc else LEAST)
    direction = " DESC" if desc else rng.choice(("", " ASC"))
    base = f"FROM {tb.name}{w} ORDER BY {m.name}{direction}"
    shape = rng.randrange(4)
    if shape == 0:
        options = [f"What is the {s} of the {e} with the {generic} {ml}?",
                   f"Return the {s} of the {e} that has the {generic} {ml}."]
        if m.most:
            options.append(f"What is the {s} of the {top} {e}?")
        if sel.key:
            options.append(f"Which {e} has the {generic} {ml}?")
        if conds:
            options = [f"Among {scope}, what is the {s} of the one with the {generic} {ml}?"]
        question, answer = rng.choice(options), f"SELECT {sel.name} {base} LIMIT 1"
    elif shape == 1:
        how = "descending" if desc else "ascending"
        question = rng.choice([
            f"List the {sp} of {scope} in {how} order of {ml}.",
            f"List the {sp} of {scope} ordered by {ml} in {how} order.",
            f"Show the {sp} of all {scope} sorted by {ml} "
            f"{'from high to low' if desc else 'from low to high'}.",
            f"What are the {sp} of {scope}, ordered by {ml} {how}?",
        ])
        answer = f"SELECT {sel.name} {base}"
    elif shape == 2:
        k = rng.randint(2, 5)
        question = rng.choice([
            f"Show the {sp} of the {k} {scope} with the {generic} {plural(m)}.",
            f"What are the {sp} of the top {k} {scope} by {ml}"
            f"{'' if desc else ', lowest first'}?",
        ])
        answer = f"SELECT {sel.name} {base} LIMIT {k}"
    else:
        question = rng.choice([
            f"List the {s} and {ml} of {scope}, ordered by {ml}"
            f"{' descending' if desc else ''}.",
            f"Show the {sp} and {plural(m)} of {scope} sorted by {ml} "
            f"in {'descending' if desc else 'ascending'} order.",
        ])
        answer = f"SELECT {sel.name}, {m.name} {base}"
    return _query(question, answer, tb, [sel, m], conds, rng)


def group(rng: random.Random) -> Query:
    tb = rng.choice(NAMED)
    groups = _groups(tb)
    if not groups:
        raise Retry
    g = rng.choice(groups)
    gl, gp, es, e = label(g), plural(g), tb.entities, tb.entity
    names = [g]
    shape = rng.randrange(4)
    if shape == 0:
        question = rng.choice([
            f"How many {es} are there in each {gl}?", f"Show each {gl} and the number of {es}.",
            f"For each {gl}, count the number of {es}.",
            f"List the {gp} and the number of {es} for each.",
            f"What is the number of {es} for each {gl}?",
        ])
        answer = f"SELECT {g.name}, COUNT(*) FROM {tb.name} GROUP BY {g.name}"
    elif shape == 1:
        most = rng.random() < 0.75
        question = rng.choice([
            f"Which {gl} has the {'most' if most else 'fewest'} {es}?",
            f"What is the {'most' if most else 'least'} common {gl} among {es}?",
            f"Show the {gl} shared by the {'largest' if most else 'smallest'} number of {es}.",
        ])
        answer = (f"SELECT {g.name} FROM {tb.name} GROUP BY {g.name} "
                  f"ORDER BY COUNT(*){' DESC' if most else ''} LIMIT 1")
    elif shape == 2:
        at_least = rng.random() < 0.5
        k = rng.randint(2, 4) if at_least else rng.randint(1, 3)
        question = rng.choice([
            f"Show the {gp} that have {'at least' if at_least else 'more than'} {k} {es}.",
            f"Which {gp} have {'at least' if at_least else 'more than'} {k} {es}?",
            f"List the {gp} with {'at least' if at_least else 'more than'} {k} {es}.",
        ])
        answer = (f"SELECT {g.name} FROM {tb.name} GROUP BY {g.name} "
                  f"HAVING COUNT(*) {'>=' if at_least else '>'} {k}")
    else:
        nums = _numeric(tb)
        if not nums:
            raise Retry
        m = rng.choice(nums)
        func, word = rng.choice(
            (("MIN", "earliest"), ("MAX", "latest"), ("AVG", "average")) if m.temporal else
            (("AVG", "average"), ("MAX", "maximum"), ("MIN", "minimum"), ("SUM", "total"),
             ("AVG", "mean"), ("MAX", "highest")))
        question = rng.choice([
            f"What is the {word} {label(m)} of {es} in each {gl}?",
            f"Show each {gl} and the {word} {label(m)} of its {es}.",
            f"For each {gl}, what is the {word} {label(m)} of the {es}?",
            f"Find the {word} {label(m)} of {e} records grouped by {gl}.",
        ])
        answer = f"SELECT {g.name}, {func}({m.name}) FROM {tb.name} GROUP BY {g.name}"
        names.append(m)
    return _query(question, answer, tb, names, [], rng)


def select(rng: random.Random) -> Query:
    """Single-table Spider rows: COUNT(*), DISTINCT, several columns, filters, aggregates."""
    tb = rng.choice(NAMED)
    es, e, nums, groups = tb.entities, tb.entity, _numeric(tb), _groups(tb)
    shape = rng.randrange(8)
    if shape in (0, 1):  # a filter, sometimes two joined by AND or OR
        sel = _pick_sel(rng, tb)
        options = [c for c in _asked(tb) if c is not sel]
        conds = [cond(rng, rng.choice(options))]
        joiner = "AND"
        if rng.random() < 0.3:
            second = cond(rng, conds[0].col) if rng.random() < 0.5 else cond(
                rng, rng.choice(options))
            if second.said != conds[0].said:
                conds.append(second)
                if second.col is conds[0].col and second.op == "=" == conds[0].op:
                    joiner = "OR"
        said = (" or ".join(rel(rng, c) for c in conds) if joiner == "OR"
                else rels(rng, conds))
        s, sp = label(sel), plural(sel)
        question = rng.choice([f"What are the {sp} of {es} {said}?",
                               f"Show the {s} of {es} {said}.",
                               f"Find the {sp} of the {es} {said}.",
                               f"List the {s} of every {e} {said}."])
        answer = f"SELECT {sel.name} FROM {tb.name} WHERE {where(conds, joiner=joiner)}"
        return _query(question, answer, tb, [sel], conds, rng)
    if shape == 2:  # COUNT(*), with or without a filter
        conds = _maybe_conds(rng, tb, [], 0.6)
        scope = f"{es} {rels(rng, conds)}" if conds else es
        question = rng.choice([f"How many {scope} are there?", f"Count the number of {scope}.",
                               f"Find the number of {scope}.",
                               f"What is the total number of {scope}?"])
        w = f" WHERE {where(conds)}" if conds else ""
        return _query(question, f"SELECT COUNT(*) FROM {tb.name}{w}", tb, [], conds, rng)
    if shape == 3 and groups:  # DISTINCT, COUNT(DISTINCT)
        g = rng.choice(groups)
        if rng.random() < 0.5:
            question = rng.choice([f"List the distinct {plural(g)} of all {es}.",
                                   f"What are the different {plural(g)} of {es}?",
                                   f"Show all the distinct {plural(g)} of {es}."])
            answer = f"SELECT DISTINCT {g.name} FROM {tb.name}"
        else:
            question = rng.choice([f"How many distinct {plural(g)} are there among {es}?",
                                   f"Count the number of different {plural(g)} of {es}.",
                                   f"How many different {plural(g)} do {es} have?"])
            answer = f"SELECT COUNT(DISTINCT {g.name}) FROM {tb.name}"
        return _query(question, answer, tb, [g], [], rng)
    if shape == 4:  # several columns
        cols = rng.sample(_asked(tb), min(len(_asked(tb)), rng.choice((2, 2, 3))))
        if len(cols) < 2:
            raise Retry
        names = [label(c) for c in cols]
        listed = ", ".join(names[:-1]) + " and " + names[-1]
        question = rng.choice([f"Show the {listed} of all {es}.",
                               f"What are the {listed} of each {e}?",
                               f"List the {listed} for every {e}."])
        answer = f"SELECT {', '.join(c.name for c in cols)} FROM {tb.name}"
        return _query(question, answer, tb, cols, [], rng)
    if not nums:
        raise Retry
    m = rng.choice(nums)
    ml = label(m)
    if shape == 5:  # several aggregates
        conds = _maybe_conds(rng, tb, [m], 0.4)
        scope = f"{es} {rels(rng, conds)}" if conds else f"all {es}"
        w = f" WHERE {where(conds)}" if conds else ""
        funcs, words = rng.choice(((("AVG", "MIN", "MAX"), "average, minimum, and maximum"),
                                   (("MAX", "MIN"), "maximum and minimum"),
                                   (("AVG",), "average"), (("MAX",), "maximum"),
                                   (("MIN", "AVG"), "minimum and average"))
                                  + (() if m.temporal else ((("SUM",), "total"),)))
        question = rng.choice([f"What are the {words} {plural(m)} of {scope}?",
                               f"Show the {words} {ml} of {scope}.",
                               f"What is the {words} {ml} of {scope}?"])
        answer = f"SELECT {', '.join(f'{f}({m.name})' for f in funcs)} FROM {tb.name}{w}"
        return _query(question, answer, tb, [m], conds, rng)
    sel = _pick_sel(rng, tb, avoid=m)
    s, sp = label(sel), plural(sel)
    if shape == 6:  # BETWEEN
        lo, hi = sorted((num_value(rng, m, threshold=True), num_value(rng, m, threshold=True)))
        if lo == hi:
            raise Retry
        question = rng.choice([f"Show the {sp} of {es} with {ml} between {lo} and {hi}.",
                               f"Which {es} have {a_label(m)} between {lo} and {hi}? "
                               f"List their {sp}."])
        answer = f"SELECT {sel.name} FROM {tb.name} WHERE {m.name} BETWEEN {lo} AND {hi}"
        return _query(question, answer, tb, [sel, m], [], rng)
    above = rng.random() < 0.6  # compared with the average, by a subquery
    question = rng.choice([
        f"List the {sp} of {es} whose {ml} is {'above' if above else 'below'} the average.",
        f"Which {es} have {'a higher' if above else 'a lower'} {ml} than the average? "
        f"Give their {sp}.",
        f"Find the {sp} of {es} with {'more' if above else 'less'} than the average {ml}.",
    ])
    answer = (f"SELECT {sel.name} FROM {tb.name} WHERE {m.name} {'>' if above else '<'} "
              f"(SELECT AVG({m.name}) FROM {tb.name})")
    return _query(question, answer, tb, [sel, m], [], rng)


def join(rng: random.Random) -> Query:
    link: Link = rng.choice(LINKS)
    par, child = TABLE_BY_NAME[link.parent], TABLE_BY_NAME[link.child]
    swap = rng.random() < 0.5  # which table the query names first (T1)
    pa, ca = ("T2", "T1") if swap else ("T1", "T2")
    first, second = (child, par) if swap else (par, child)
    on = (f"{first.name} AS T1 JOIN {second.name} AS T2 ON "
          + (f"T1.{link.fk} = T2.{link.pk}" if swap else f"T1.{link.pk} = T2.{link.fk}"))
    key = _key(par)
    used: dict[str, list[Col]] = {first.name: [], second.name: []}
    used[par.name].append(_col(par, link.pk))
    used[child.name].append(_col(child, link.fk))
    conds: list[Cond] = []
    shape = rng.choices(range(5), weights=(3, 3, 2, 2, 2))[0]
    if shape == 0:  # parents described by a child condition
        ps = _pick_sel(rng, par)
        c = cond(rng, rng.choice(_asked(child)))
        conds.append(c)
        crel = rel(rng, c)
        distinct = rng.random() < 0.3
        question = rng.choice(
            [f"List the distinct {plural(ps)} of {par.entities} {link.down} {crel}."]
            if distinct else
            [f"What are the {plural(ps)} of the {par.entities} {link.down} {crel}?",
             f"Show the {label(ps)} of {par.entities} {link.down} {crel}.",
             f"Find the {plural(ps)} of {par.entities} {link.down} {crel}."])
        answer = (f"SELECT {'DISTINCT ' if distinct else ''}{pa}.{ps.name} FROM {on} "
                  f"WHERE {ca}.{c.col.name} {c.op} {c.lit}")
        used[par.name].insert(0, ps)
        used[child.name].append(c.col)
    elif shape in (1, 2):  # children described by their parent
        c = cond(rng, rng.choice(_asked(par)))
        conds.append(c)
        pdesc = c.said if c.col.key and c.op == "=" and rng.random() < 0.6 else (
            f"{par.entities} {rel(rng, c)}")
        if shape == 1:
            cs = rng.choice(_asked(child))
            question = rng.choice([
                f"What are the {plural(cs)} of {child.entities} {link.up} {pdesc}?",
                f"Show the {label(cs)} of {child.entities} {link.up} {pdesc}.",
                f"List the {plural(cs)} of all {child.entities} {link.up} {pdesc}."])
            answer = f"SELECT {ca}.{cs.name} FROM {on} WHERE {pa}.{c.col.name} {c.op} {c.lit}"
            used[child.name].insert(0, cs)
        else:
            question = rng.choice([f"How many {child.entities} are {link.up} {pdesc}?",
                                   f"Count the number of {child.entities} {link.up} {pdesc}.",
                                   f"Find the number of {child.entities} {link.up} {pdesc}."])
            answer = f"SELECT COUNT(*) FROM {on} WHERE {pa}.{c.col.name} {c.op} {c.lit}"
        used[par.name].append(c.col)
    elif shape == 3:  # a count per parent
        kl, pe, ce = label(key), par.entity, child.entities
        question = rng.choice([
            f"For each {pe}, show the {kl} and the number of {ce}.",
            f"Show the {kl} of each {pe} and the number of {ce} {link.up} it.",
            f"How many {ce} does each {pe} have? List the {kl} and the count."])
        answer = f"SELECT {pa}.{key.name}, COUNT(*) FROM {on} GROUP BY {pa}.{link.pk}"
        used[par.name].insert(0, key)
    else:  # the parent with the most children, or with at least k
        kl, pe, ce = label(key), par.entity, child.entities
        group_by = f"SELECT {pa}.{key.name} FROM {on} GROUP BY {pa}.{link.pk}"
        if rng.random() < 0.6:
            question = rng.choice([
                f"Which {pe} has the most {ce}? Give me the {kl}.",
                f"What is the {kl} of the {pe} with the most {ce}?",
                f"Show the {kl} of the {pe} that has the largest number of {ce}."])
            answer = f"{group_by} ORDER BY COUNT(*) DESC LIMIT 1"
        else:
            k = rng.randint(2, 4)
            question = rng.choice([f"Show the {plural(key)} of {par.entities} with at least {k} "
                                   f"{ce}.", f"Which {par.entities} have {k} or more {ce}? "
                                   f"List their {plural(key)}."])
            answer = f"{group_by} HAVING COUNT(*) >= {k}"
        used[par.name].insert(0, key)
    for tb in (first, second):
        used[tb.name] = with_extras(rng, used[tb.name], [c for c in tb.cols if not c.ident],
                                    0.2)
    return Query(question, answer, used, [c.lit for c in conds])
