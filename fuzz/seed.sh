#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets from the golden wire fixtures
# (proto/tests/golden/*.hex: one complete frame each) and a few signed Server API
# requests. Idempotent: seeds are named after their fixture, so running it again
# only rewrites the same files; whatever libFuzzer added to corpus/ stays.
set -euo pipefail
cd "$(dirname "$0")"
golden=../proto/tests/golden

seed() { # seed TARGET NAME < bytes
    mkdir -p "corpus/$1"
    cat > "corpus/$1/$2"
}

# Hex digits to bytes, whitespace ignored. perl rather than xxd: perl is on every
# Debian machine, xxd comes with vim and may be missing on a fresh one.
unhex() {
    perl -0777 -ne 's/\s+//g; print pack("H*", $_)'
}

for fixture in "$golden"/*.hex; do
    name=$(basename "$fixture" .hex)
    case "$name" in
        ipc_*) targets="ipc_frame" ;;
        up_*) targets="upstream_frame" ;;
        *) targets="" ;;
    esac
    case "$name" in
        ipc_hello | ipc_welcome | ipc_refused | up_connect | up_connack_*) targets="$targets handshake" ;;
    esac
    for target in $targets; do
        # The whole frame, and the bare body (the prefix is 4 bytes, 8 hex digits).
        unhex < "$fixture" | seed "$target" "$name"
        tr -d ' \n' < "$fixture" | cut -c9- | unhex | seed "$target" "$name.body"
    done
done

# Token-shaped text for the claims reader.
printf 'AQhkZW1vLWtleQVhbGljZYCAgICAgAEAKg.c2ln' | seed handshake token_like

# Server API requests: selector byte (endpoint index << 1 | sign-it), headers, a
# blank line, the body.
api() { # api NAME SELECTOR HEADERS BODY
    printf '%b%b\n\n%b' "$2" "$3" "$4" | seed server_api "$1"
}
api get_token '\x01' 'Nonce:n1\nTimestamp:1700000000' 'userId=alice&name=Alice&portraitUri=http%3A%2F%2Fx'
api expire '\x05' 'Nonce:n2\nTimestamp:1700000000000' 'userId=a&userId=b&time=1700000000000'
api block '\x07' 'RC-Nonce:n3\nRC-Timestamp:1700000000' 'userId=a&minute=10'
api publish '\x0d' 'Nonce:n4' 'fromUserId=a&toUserId=b&toUserId=c&objectName=RC%3ATxtMsg&content=%7B%22content%22%3A%22hi%22%7D'
api group '\x13' 'Nonce:n5' 'userId=a&userId=b&groupId=g&groupName=G'
api bulk '\x1f' 'Nonce:n6' 'fromUserId=a&toUserId=b&count=5&objectName=RC:TxtMsg&contentPrefix=m'
api unsigned '\x00' 'App-Key:fuzz-key\nNonce:n7\nTimestamp:1700000000\nSignature:00' 'userId=a'
echo "seeded: $(find corpus -type f | wc -l) files in $(ls corpus | wc -l) corpora"
