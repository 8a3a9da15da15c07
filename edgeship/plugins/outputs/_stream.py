"""What the outputs that write bytes to a socket (tcp, syslog, gelf) share: a flush turns the
chunk into payloads (``payloads(chunk)``, the plugin's) and hands them to one
``net.stream.Sender`` (``self.sender``, made by the plugin's configure); no acknowledgement
exists, so "sent" means in the kernel (see net/stream.py). A send that failed is logged with
the chunk's record count and retried; the sender closes when the output stops.
"""
from edgeship.codecs import formats
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.engine.plugin import OK, RETRY, Output


def record_format_options(default_format, format_help):
    """Format, json_date_key, json_date_format and Raw_Message_Key (tcp and udp)."""
    return (
        Option("Format", default=default_format,
               choices=("msgpack", "json", "json_lines", "json_stream"), help=format_help),
        Option("json_date_key", default="date",
               help="key of the record time in JSON formats; false/off/no leaves it out"),
        Option("json_date_format", default="double", choices=formats.DATE_FORMATS,
               help="time in JSON formats: double, epoch, epoch_ms, iso8601 or "
                    "java_sql_timestamp"),
        Option("Raw_Message_Key",
               help="send only this record accessor's text per record, each with a newline"),
    )


class SenderOutput(Output):
    sender = None

    def configure_record_format(self):
        """Bind the record_format_options: ``format``, ``date_key``, ``date_format`` and
        ``raw_template`` (None without Raw_Message_Key)."""
        conf = self.conf
        self.format = conf["format"]
        self.date_key = formats.date_key_option(conf["json_date_key"])
        self.date_format = conf["json_date_format"]
        self.raw_template = None
        if conf["raw_message_key"]:
            try:
                self.raw_template = formats.record_template(conf["raw_message_key"])
            except ValueError as exc:
                raise ConfigError("%s: Raw_Message_Key: %s" % (self.name, exc),
                                  key="raw_message_key")
        self.reads_records = self.format != "msgpack" or self.raw_template is not None

    def payloads(self, chunk):
        """The bytes objects to send for ``chunk``, in order."""
        raise NotImplementedError

    async def flush(self, chunk):
        payloads = self.payloads(chunk)
        if not payloads:
            return OK
        problem = await self.sender.send(payloads)
        if problem is not None:
            self.log.error("could not deliver %d records to %s: %s", chunk.count,
                           self.sender.label, problem)
            return RETRY
        return OK

    async def stop(self):
        self.sender.close()
