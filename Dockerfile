# maildesk: one process, `maildesk run`. Config and data are volumes:
#   docker run -v $PWD/maildesk.toml:/etc/maildesk/maildesk.toml -v $PWD/config:/etc/maildesk/config \
#              -v maildesk-data:/var/lib/maildesk -p 2525:2525 maildesk
# In the mounted maildesk.toml listen on 0.0.0.0 and keep data under /var/lib/maildesk.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MAILDESK_CONFIG=/etc/maildesk/maildesk.toml

WORKDIR /src
COPY pyproject.toml README.md ./
COPY maildesk ./maildesk
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/maildesk --shell /usr/sbin/nologin maildesk \
    && mkdir -p /etc/maildesk/config /var/lib/maildesk \
    && chown maildesk:maildesk /var/lib/maildesk \
    && rm -rf /src

COPY --chown=root:root maildesk.toml /etc/maildesk/maildesk.toml
COPY --chown=root:root config /etc/maildesk/config

USER 10001
WORKDIR /var/lib/maildesk
VOLUME ["/var/lib/maildesk", "/etc/maildesk"]
EXPOSE 2525

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import socket,tomllib,os; c=tomllib.load(open(os.environ['MAILDESK_CONFIG'],'rb'))['smtp']; h=c.get('host','127.0.0.1'); s=socket.create_connection(('127.0.0.1' if h in ('0.0.0.0','::') else h, c.get('port',2525)), 3); assert s.recv(3)==b'220'"]

ENTRYPOINT ["sh", "-c", "maildesk db upgrade && exec maildesk run"]
