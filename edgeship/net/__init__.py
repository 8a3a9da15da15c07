"""Network pieces shared by plugins (CPython; may import edgeship.core and edgeship.codecs).

    tls         Fluent Bit's ``tls.*`` options and the SSLContext they describe
    mqtt_link   a paho-mqtt client driven by the asyncio loop (mqtt output, mqtt_client input)
    upstream    forward upstream files ([UPSTREAM] and its [NODE]s)
"""
