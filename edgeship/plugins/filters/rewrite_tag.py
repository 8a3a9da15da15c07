"""rewrite_tag filter: re-emit records under a new tag (filter_rewrite_tag).

``Rule $KEY REGEX NEW_TAG KEEP`` (repeatable). Behaviour of Fluent Bit 5.1.1:
- The first rule whose REGEX matches (searches) the string value of $KEY wins; a missing
  or non-string value matches no rule.
- NEW_TAG may use $0..$9 (captures), $TAG, $TAG[n] (the tag split on '.') and record
  accessors such as $svc or $k['sub']; a missing key adds nothing.
- The copy re-enters the pipeline with its new tag and its original time, through every
  filter matching the new tag except this one (Fluent Bit's emitter loop guard), then the
  router. KEEP false drops the original record, KEEP true lets it go on unchanged.
"""
import copy

from edgeship.codecs import formats
from edgeship.core.schema import TRUE_WORDS, FALSE_WORDS, Option
from edgeship.engine.plugin import Filter
from edgeship.plugins.filters._rules import rule_accessor, rule_error, rule_regex
from edgeship.plugins.filters._tokens import split_tokens


class RewriteTagFilter(Filter):
    name = "rewrite_tag"
    description = "Rewrite records tags"
    options = (
        Option("Rule", multiple=True, help="$KEY REGEX NEW_TAG KEEP"),
        Option("Emitter_Name", help="name of the internal emitter (default emitter_for_NAME)"),
        Option("Emitter_Storage.type", default="memory", choices=("memory", "filesystem"),
               compat=True, help="re-emitted records join the output queues"),
        Option("Emitter_Mem_Buf_Limit", "size", "10M",
               compat=True, help="the engine's memory budget applies"),
    )

    def configure(self):
        self.emitter_name = self.conf["emitter_name"] or "emitter_for_%s" % self.instance
        self.rules = []
        for key, value, entry in self.conf.ordered:
            if key == "rule":
                self.rules.append(self._rule(value, entry))
        if not self.rules:
            self.log.warn("no rules have been defined")

    def _rule(self, value, entry):
        words = split_tokens(value, 4)
        if len(words) != 4:
            raise rule_error("rewrite_tag", "a Rule is '$KEY REGEX NEW_TAG KEEP', got '%s'"
                             % value, entry)
        key, pattern, new_tag, keep = words
        acc = rule_accessor("rewrite_tag", key, entry)
        regex = rule_regex("rewrite_tag", pattern, entry)
        try:
            template = formats.record_template(new_tag)
        except ValueError as exc:
            raise rule_error("rewrite_tag", exc, entry)
        word = keep.strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise rule_error("rewrite_tag", "KEEP must be true or false, got '%s'" % keep,
                             entry)
        return acc, regex, template, word in TRUE_WORDS

    def _first_match(self, record):
        for acc, regex, template, keep in self.rules:
            value = acc.get(record)
            if isinstance(value, str):
                match = regex.search(value)
                if match is not None:
                    return match, template, keep
        return None, None, None

    def filter(self, tag, events):
        if not self.rules:
            return events
        passed = []
        emitted = {}    # new tag -> batch, in record order
        empty_tags = 0
        for event in events:
            match, template, keep = self._first_match(event[1])
            if match is None:
                passed.append(event)
                continue
            new_tag = template.render(event[1], tag, match)
            if not new_tag:
                empty_tags += 1
                passed.append(event)
                continue
            if keep:
                passed.append(event)
                # The two copies go separate ways through later filters.
                event = (event[0], copy.deepcopy(event[1]))
            emitted.setdefault(new_tag, []).append(event)
        if empty_tags:
            self.log.warn("rule produced an empty tag for %d record(s); kept as is", empty_tags)
        self.dropped += len(events) - len(passed)
        for new_tag, batch in emitted.items():
            self.added += len(batch)
            self.context.reemit(new_tag, batch)
        return passed


PLUGIN = RewriteTagFilter
