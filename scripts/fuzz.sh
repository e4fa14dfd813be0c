#!/bin/sh
# fuzz.sh: builds the libFuzzer targets with clang and runs each for
# FUZZ_SECONDS (default 10) on its corpus and the codec fixtures. Crashes
# land in fuzz/artifacts/; add the input to fuzz/corpus/<target>/ once fixed.
set -eu
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-10}
fixtures=../shared/fixtures/codec/fixtures
car_fixtures=../shared/fixtures/car

[ -f build-fuzz/build.ninja ] ||
	CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C build-fuzz >/dev/null

mkdir -p fuzz/artifacts
status=0
for target in varint multibase cid dagcbor dagjson dagpb carreader carindex unixfs_data partialfile gateway_path rpc_json ws_frame adt_amt adt_hamt; do
	work=$(mktemp -d)
	# libFuzzer writes new inputs into the first corpus folder: a scratch
	# copy, so short runs never touch the committed corpus.
	[ -d "fuzz/corpus/$target" ] && cp -r "fuzz/corpus/$target/." "$work/" 2>/dev/null || true
	case $target in
	dagcbor) seeds=$fixtures ext=dag-cbor ;;
	dagjson) seeds=$fixtures ext=dag-json ;;
	dagpb) seeds=$fixtures ext=dag-pb ;;
	carreader) seeds=$car_fixtures ext=car ;;
	carindex) seeds=$car_fixtures ext=carindex ;;
	*) ext= ;;
	esac
	if [ -n "$ext" ]; then
		find "$seeds" -name "*.$ext" -size -1M -exec cp {} "$work/" \;
	fi
	if ./build-fuzz/fuzz/fuzz_$target "$work" -max_total_time="$seconds" \
		-artifact_prefix=fuzz/artifacts/$target- -print_final_stats=0 >"$work.log" 2>&1; then
		echo "fuzz $target: ok ($(grep -o 'Done [0-9]* runs' "$work.log" | tail -1))"
	else
		echo "fuzz $target: FAILED"
		tail -40 "$work.log"
		status=1
	fi
	rm -rf "$work" "$work.log"
done
exit $status
