# tallenne container image: build the TypeScript and the web page in one stage, ship only the runtime.
# Build:  docker build -t tallenne .
# Run:    docker run -d --name tallenne --stop-timeout 60 \
#           -p 5060:5060/udp -p 5060:5060/tcp -p 8080:8080 -p 20000-20999:20000-20999/udp \
#           -v tallenne-data:/var/lib/tallenne tallenne
# The image config is deploy/docker/tallenne.toml; mount your own over
# /etc/tallenne/tallenne.toml (see deploy/README.md).

FROM node:20-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so a source change does not re-install them. The native packages
# (@discordjs/opus, lmdb) ship prebuilt binaries, so their install scripts are not needed.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY web ./web
RUN npm run build && npm prune --omit=dev --ignore-scripts
# Our three native addons, built against this image's Node: batched RTP receive (rtp.receive),
# the thread CPU clock and the encoder's libopus binding. Without one, the daemon falls back
# (Node's datagram reading, /proc, @discordjs/opus) and says so in its log.
COPY native ./native
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/* \
 && npm_config_nodedir=/usr/local npm run install

FROM node:20-bookworm-slim AS runtime
# ffmpeg: `tallenne recordings export --format mp3` converts through it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tallenne \
 && useradd --system --uid 10001 --gid tallenne --home-dir /var/lib/tallenne --shell /usr/sbin/nologin tallenne \
 && mkdir -p /var/lib/tallenne /etc/tallenne \
 && chown tallenne:tallenne /var/lib/tallenne

WORKDIR /opt/tallenne
ENV NODE_ENV=production \
    TALLENNE_CONFIG=/etc/tallenne/tallenne.toml
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/udp-batch/build/Release/udp_batch.node ./native/udp-batch/build/Release/udp_batch.node
COPY --from=build /src/native/thread-cpu/build/Release/thread_cpu.node ./native/thread-cpu/build/Release/thread_cpu.node
COPY --from=build /src/native/opus-codec/build/Release/opus_codec.node ./native/opus-codec/build/Release/opus_codec.node
COPY bin ./bin
COPY config ./config
COPY deploy/docker/tallenne.toml /etc/tallenne/tallenne.toml
RUN ln -s /opt/tallenne/bin/tallenne /usr/local/bin/tallenne

# Spool, recordings, LMDB index and the number hash key: keep them on a volume.
VOLUME ["/var/lib/tallenne"]
# SIP (UDP and TCP), HTTP (/metrics, /healthz, /readyz), RTP range of the image config.
EXPOSE 5060/udp 5060/tcp 8080/tcp 20000-20999/udp

USER tallenne:tallenne
# The daemon finishes active calls on SIGTERM (up to calls.shutdown_deadline) before it
# exits: give `docker stop` a timeout above that deadline (--stop-timeout / stop_grace_period).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["node", "bin/tallenne", "run", "--config", "/etc/tallenne/tallenne.toml"]
