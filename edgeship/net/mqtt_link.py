"""A paho-mqtt client driven by the engine's asyncio loop, shared by the mqtt output and
the mqtt_client input: connection options, connect/reconnect with backoff, TLS, websockets.

Why the loop and not paho's network thread: every callback (PUBACK -> flush result, message
-> record, ack -> PUBACK) then runs on the loop, so nothing needs a lock or a thread-safe
handoff per message, and no byte goes through paho's wake-up socket pair per publish.
paho supports this through ``loop_read``/``loop_write``/``loop_misc`` and its socket
callbacks. The one blocking call, the TCP (+TLS, +websocket) connect, runs in a worker
thread while the loop leaves the client alone; the socket callbacks it triggers are handed
back to the loop with ``call_soon_threadsafe``.

Reconnecting is ours, not paho's: after a failed attempt or a lost connection the next try
waits between 0.5 s and 1 s, 2 s, 4 s ... up to ``Reconnect_Max`` (core.backoff's full
jitter, the backoff of every retry and reconnect in edgeship), and plugins see
``connected`` go false at once so a flush can answer RETRY instead of waiting.
"""
import asyncio
import socket
import threading

from edgeship.core import backoff
from edgeship.core.errors import ConfigError
from edgeship.core.schema import Option
from edgeship.net.tls import TLS_OPTIONS, tls_context

PROTOCOLS = ("3.1.1", "5", "3.1")
# The first reconnect waits 0.5-1 s, each next one up to twice as long, up to Reconnect_Max
# (core.backoff, the one backoff).
RECONNECT_BASE = 0.5


def connection_options(clean_session="on", session_expiry="0"):
    """The broker connection options; defaults differ between output and input."""
    return (
        Option("Host", default="127.0.0.1", help="broker host"),
        Option("Port", "int", "1883", min=1, max=65535, help="broker port"),
        Option("Client_Id", help="client id (default: edgeship-<hostname>-<instance>)"),
        Option("Username", help="user name"),
        Option("Password", help="password"),
        Option("Protocol", default="3.1.1", choices=PROTOCOLS, help="MQTT version: 3.1.1 or 5"),
        Option("Keepalive", "time", "60", help="seconds between keep-alive pings"),
        Option("Clean_Session", "bool", clean_session,
               help="start without the broker's stored session (MQTT 5: clean start)"),
        Option("Session_Expiry", "time", session_expiry,
               help="MQTT 5: seconds the broker keeps the session after a disconnect"),
        Option("Transport", default="tcp", choices=("tcp", "websockets"),
               help="tcp, or websockets (the broker's websocket listener)"),
        Option("Ws_Path", default="/mqtt", help="websockets: request path"),
        Option("Connect_Timeout", "time", "5", help="seconds allowed for connect + CONNACK"),
        Option("Reconnect_Max", "time", "30", help="longest wait between reconnect attempts"),
    ) + TLS_OPTIONS


def default_client_id(instance):
    return "edgeship-%s-%s" % (socket.gethostname(), instance)


def check_connection_conf(conf):
    """ConfigError for combinations paho would refuse later."""
    if conf["password"] is not None and conf["username"] is None:
        raise ConfigError("Password needs a Username", key="password")
    if not conf["clean_session"] and conf["client_id"] == "":
        raise ConfigError("a persistent session (Clean_Session off) needs a Client_Id",
                          key="client_id")


class _NoSSL:
    """Stands in for the ssl module when the CLI kept it out of the process (no section
    turns TLS on). paho names ssl's exceptions in the ``except`` clauses of its plain socket
    reads and writes, which fail with AttributeError when ssl is None; these are never
    raised."""

    class SSLWantReadError(OSError):
        pass

    class SSLWantWriteError(OSError):
        pass

    class CertificateError(ValueError):
        pass


def _send_server_name(ctx, name):
    """Make ``ctx`` send ``name`` as SNI and check the certificate against it (tls.vhost):
    paho passes its host as ``server_hostname`` and has no option for another name."""
    wrap_socket = ctx.wrap_socket

    def wrap_with_name(sock, server_hostname=None, **kwargs):
        return wrap_socket(sock, server_hostname=name, **kwargs)

    ctx.wrap_socket = wrap_with_name


DISCONNECTED, CONNECTING, CONNECTED, CLOSED = "disconnected", "connecting", "connected", "closed"


class Link:
    """One paho client on the running loop.

    ``on_connected(session_present)``, ``on_message(message)`` and ``on_publish(mid,
    failed)`` are called on the loop. ``lost`` is a future that completes when the current
    connection ends (a new one per connection); ``generation`` counts connections, so an
    acknowledgement meant for an old connection is never sent on a new one.
    """

    def __init__(self, plugin, conf, on_connected=None, on_message=None, on_publish=None,
                 manual_ack=False, will=None):
        self.log = plugin.log
        self.conf = conf
        self.client_id = conf["client_id"] if conf["client_id"] is not None \
            else default_client_id(plugin.instance)
        self.on_connected = on_connected
        self.on_message_cb = on_message
        self.on_publish_cb = on_publish
        self.manual_ack = manual_ack
        self.will = will
        self.ssl = tls_context(conf, server=False)
        self.state = DISCONNECTED
        self.generation = 0
        self.receive_maximum = 0          # MQTT 5: the broker's limit on our unacked messages
        self.client = None
        self.sock = None
        self.loop = None
        self.lost = None
        self._reading = True
        self._connack = None
        self._wake = None
        self._tasks = []
        self._failures = 0
        self._received = 0

    # ------------------------------------------------------------------ paho client
    def _make_client(self):
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        if paho.ssl is None:
            paho.ssl = _NoSSL

        conf = self.conf
        self.paho = paho
        v5 = conf["protocol"] == "5"
        protocol = {"3.1.1": paho.MQTTv311, "5": paho.MQTTv5, "3.1": paho.MQTTv31}[conf["protocol"]]
        kwargs = dict(callback_api_version=CallbackAPIVersion.VERSION2, client_id=self.client_id,
                      protocol=protocol, transport=conf["transport"], manual_ack=self.manual_ack,
                      reconnect_on_failure=False)
        if not v5:
            kwargs["clean_session"] = conf["clean_session"]
        client = paho.Client(**kwargs)
        # Flow control is the plugin's (Max_Inflight): paho must never hold messages back,
        # or its resend-after-reconnect skips some (it stops at the first queued one).
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.connect_timeout = conf["connect_timeout"]
        if conf["username"] is not None:
            client.username_pw_set(conf["username"], conf["password"])
        if self.ssl is not None:
            if conf["tls.vhost"]:
                _send_server_name(self.ssl, conf["tls.vhost"])
            client.tls_set_context(self.ssl)
            if not conf["tls.verify"] or not conf["tls.verify_hostname"]:
                client.tls_insecure_set(True)
        if conf["transport"] == "websockets":
            client.ws_set_options(path=conf["ws_path"])
        if self.will is not None:
            topic, body, qos, retain = self.will
            client.will_set(topic, body, qos, retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    def _connect_args(self):
        conf = self.conf
        kwargs = dict(keepalive=max(1, int(conf["keepalive"])))
        if conf["protocol"] == "5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = min(int(conf["session_expiry"]), 0xFFFFFFFF)
            kwargs["clean_start"] = conf["clean_session"]
            kwargs["properties"] = props
        return kwargs

    # ------------------------------------------------------------------ socket callbacks
    def _on_loop(self, fn, *args):
        """Run ``fn`` on the loop: now when called there, else scheduled (connect thread)."""
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client, userdata, sock):
        self._on_loop(self._watch, sock)

    def _watch(self, sock):
        self.sock = sock
        if self.state == CLOSED:
            return
        if self._reading:
            self.loop.add_reader(sock, self._readable)

    def _on_socket_close(self, client, userdata, sock):
        # paho closes the socket right after this returns: unregister first.
        if threading.get_ident() == self._loop_thread:
            self._unwatch(sock)
        else:
            self.loop.call_soon_threadsafe(self._unwatch, sock)

    def _unwatch(self, sock):
        try:
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
        except (ValueError, OSError):  # already closed
            pass
        if self.sock is sock:
            self.sock = None

    def _on_register_write(self, client, userdata, sock):
        self._on_loop(self._want_write, sock)

    def _want_write(self, sock):
        if sock is self.sock or self.sock is None:
            self.loop.add_writer(sock, self._writable)

    def _on_unregister_write(self, client, userdata, sock):
        self._on_loop(self._no_write, sock)

    def _no_write(self, sock):
        try:
            self.loop.remove_writer(sock)
        except (ValueError, OSError):
            pass

    def _readable(self):
        client = self.client
        # loop_read reads one packet per call when nothing of ours is in flight (a
        # subscriber): read on while packets keep bringing messages, up to a bound.
        for _ in range(256):
            seen = self._received
            if client.loop_read() or self._received == seen:
                break
        # TLS: decrypted bytes can wait in the SSL object, where select() cannot see them.
        sock = self.sock
        while sock is not None and sock is self.sock and \
                getattr(sock, "pending", None) is not None and sock.pending() > 0:
            if client.loop_read():
                break

    def _writable(self):
        self.client.loop_write()

    def pause_reading(self):
        if self._reading:
            self._reading = False
            if self.sock is not None:
                self.loop.remove_reader(self.sock)

    def resume_reading(self):
        if not self._reading:
            self._reading = True
            if self.sock is not None:
                self.loop.add_reader(self.sock, self._readable)

    # ------------------------------------------------------------------ paho callbacks (loop)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if self.state == CLOSED:  # stopped while this attempt was under way
            client.disconnect()
            return
        if reason_code.is_failure:
            self.log.error("broker %s:%d refused the connection: %s",
                           self.conf["host"], self.conf["port"], reason_code)
            if not self._connack.done():
                self._connack.set_result(False)
            return
        self.receive_maximum = getattr(properties, "ReceiveMaximum", 0) or 0
        self.state = CONNECTED
        self.generation += 1
        self.lost = self.loop.create_future()
        if self._failures:
            self.log.info("connected to %s:%d again", self.conf["host"], self.conf["port"])
        else:
            self.log.info("connected to %s:%d", self.conf["host"], self.conf["port"])
        self._failures = 0
        if not self._connack.done():
            self._connack.set_result(True)
        if self.on_connected is not None:
            self.on_connected(flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        was = self.state
        if self.state != CLOSED:
            self.state = DISCONNECTED
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(False)
        if was == CONNECTED:
            self.log.warn("connection to %s:%d lost: %s", self.conf["host"], self.conf["port"],
                          reason_code)
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(True)
        if self._wake is not None:
            self._wake.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        if self.on_publish_cb is not None:
            self.on_publish_cb(mid, reason_code.is_failure)

    def _on_message(self, client, userdata, message):
        self._received += 1
        if self.on_message_cb is not None:
            self.on_message_cb(message)

    # ------------------------------------------------------------------ connection upkeep
    @property
    def connected(self):
        return self.state == CONNECTED

    async def start(self):
        """Connect in the background; again after stop() (an input the engine restarts)."""
        self.state = DISCONNECTED
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.client = self._make_client()
        self._wake = asyncio.Event()
        self._first = self.loop.create_future()
        self._tasks = [asyncio.ensure_future(self._keep_connected()),
                       asyncio.ensure_future(self._tick())]

    async def wait_connected(self, timeout):
        """Wait up to ``timeout`` seconds for the first connection attempt to end; True when
        connected."""
        if self.connected:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._first), timeout)
        except asyncio.TimeoutError:
            pass
        return self.connected

    async def _keep_connected(self):
        conf = self.conf
        while self.state != CLOSED:
            if self.state == CONNECTED:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.state = CONNECTING
            self._connack = self.loop.create_future()
            ok = False
            try:
                await self.loop.run_in_executor(None, self._blocking_connect)
                ok = await asyncio.wait_for(asyncio.shield(self._connack),
                                            conf["connect_timeout"])
            except asyncio.TimeoutError:
                self._give_up_attempt("no CONNACK within %ss" % conf["connect_timeout"])
            except Exception as exc:  # socket, TLS and websocket errors all end up here
                self._give_up_attempt(exc)
            if not self._first.done():
                self._first.set_result(ok)
            if self.state == CLOSED:
                return
            if ok:
                continue
            self.state = DISCONNECTED
            self._failures += 1
            wait = backoff.jittered(self._failures, RECONNECT_BASE, conf["reconnect_max"])
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def _blocking_connect(self):
        self.client.connect(self.conf["host"], self.conf["port"], **self._connect_args())

    def _give_up_attempt(self, why):
        if self._failures == 0 or self.log.level >= 4:
            self.log.warn("cannot connect to %s:%d: %s (retrying in the background)",
                          self.conf["host"], self.conf["port"], why)
        # Stop watching the half-open socket now; paho closes it when the next attempt
        # starts (reconnect() closes the old socket first).
        if self.sock is not None:
            self._unwatch(self.sock)

    async def _tick(self):
        """Keep-alive pings and ping timeouts (paho's loop_misc), once a second."""
        while self.state != CLOSED:
            await asyncio.sleep(1.0)
            if self.state == CONNECTED:
                self.client.loop_misc()

    async def stop(self, timeout=1.0):
        """Disconnect cleanly (the broker then drops the Last Will), and stop."""
        was_connected = self.state == CONNECTED
        self.state = CLOSED   # first: the disconnect below must not start a reconnect
        if was_connected:
            self.client.disconnect()
            deadline = self.loop.time() + timeout
            while self.sock is not None and self.loop.time() < deadline:
                await asyncio.sleep(0.01)
        if self._wake is not None:
            self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sock is not None:
            sock, self.sock = self.sock, None
            self._unwatch(sock)
            sock.close()
