// Prints the bytes MM2's own classes write to its internal topics, one fixture per
// line as `name key-hex value-hex`, for strait's unit tests (src/offsets/fixtures).
// Run against the connect-mirror jars of a Kafka release:
//   java -cp "$HOME/.cache/strait/kafka/4.3.1/libs/*" testbed/mm2-fixtures/Mm2Fixtures.java
// The serializers are package-private, hence the reflection.

import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.mirror.Checkpoint;
import org.apache.kafka.connect.mirror.Heartbeat;
import org.apache.kafka.connect.mirror.MirrorSourceConnector;
import org.apache.kafka.connect.mirror.OffsetSync;
import org.apache.kafka.connect.storage.OffsetBackingStore;
import org.apache.kafka.connect.storage.OffsetStorageWriter;

public class Mm2Fixtures {
    private static final HexFormat HEX = HexFormat.of();

    public static void main(String[] args) throws Exception {
        heartbeat("heartbeat", new Heartbeat("A", "B", 1_700_000_000_123L));
        heartbeat("heartbeat_long_aliases", new Heartbeat("us-west-1", "eu-central-é", 0L));
        checkpoint("checkpoint", new Checkpoint("orders-app", new TopicPartition("A.orders", 3), 1042L, 977L, ""));
        checkpoint("checkpoint_metadata", new Checkpoint("g", new TopicPartition("t", 0), 0L, 0L, "commit by ünïcode"));
        checkpoint("checkpoint_large", new Checkpoint("group", new TopicPartition("topic", 2147483647), Long.MAX_VALUE, 1L << 40, "m"));
        offsetSync("offset_sync", new OffsetSync(new TopicPartition("orders", 3), 1042L, 977L));
        offsetSync("offset_sync_zero", new OffsetSync(new TopicPartition("t", 0), 0L, 0L));
        connectOffset("connect_offset", "A", "orders", 0, 41L);
        connectOffset("connect_offset_large", "source", "my.topic-name_1", 17, 9_000_000_000L);
        connectOffset("connect_offset_escapes", "a\"b\\c\td\u0001\u001f\u007f\n\b\f\ré", "t", 2, 0L);
    }

    private static void heartbeat(String name, Heartbeat heartbeat) throws Exception {
        print(name, call(heartbeat, "recordKey"), call(heartbeat, "recordValue"));
    }

    private static void checkpoint(String name, Checkpoint checkpoint) throws Exception {
        print(name, call(checkpoint, "recordKey"), call(checkpoint, "recordValue"));
    }

    private static void offsetSync(String name, OffsetSync sync) throws Exception {
        print(name, call(sync, "recordKey"), call(sync, "recordValue"));
    }

    /** What Connect's worker writes to MM2's offsets topic for MirrorSourceConnector. */
    private static void connectOffset(String name, String cluster, String topic, int partition, long offset)
            throws Exception {
        JsonConverter keyConverter = new JsonConverter();
        keyConverter.configure(Map.of("schemas.enable", "false"), true);
        JsonConverter valueConverter = new JsonConverter();
        valueConverter.configure(Map.of("schemas.enable", "false"), false);
        List<Map<ByteBuffer, ByteBuffer>> written = new ArrayList<>();
        OffsetBackingStore store = (OffsetBackingStore) Proxy.newProxyInstance(
                Mm2Fixtures.class.getClassLoader(),
                new Class<?>[] {OffsetBackingStore.class},
                (proxy, method, methodArgs) -> {
                    if (!method.getName().equals("set")) {
                        throw new UnsupportedOperationException(method.getName());
                    }
                    @SuppressWarnings("unchecked")
                    Map<ByteBuffer, ByteBuffer> values = (Map<ByteBuffer, ByteBuffer>) methodArgs[0];
                    written.add(values);
                    return CompletableFuture.completedFuture(null);
                });
        // MM2 names its connectors after their classes (MirrorMakerConfig.connectorBaseConfig).
        String connector = MirrorSourceConnector.class.getSimpleName();
        OffsetStorageWriter writer = new OffsetStorageWriter(store, connector, keyConverter, valueConverter);
        Method wrapPartition = Class.forName("org.apache.kafka.connect.mirror.MirrorUtils")
                .getDeclaredMethod("wrapPartition", TopicPartition.class, String.class);
        wrapPartition.setAccessible(true);
        Method wrapOffset = Class.forName("org.apache.kafka.connect.mirror.MirrorUtils")
                .getDeclaredMethod("wrapOffset", long.class);
        @SuppressWarnings("unchecked")
        Map<String, ?> sourcePartition =
                (Map<String, ?>) wrapPartition.invoke(null, new TopicPartition(topic, partition), cluster);
        @SuppressWarnings("unchecked")
        Map<String, ?> sourceOffset = (Map<String, ?>) wrapOffset.invoke(null, offset);
        writer.offset(sourcePartition, sourceOffset);
        writer.beginFlush();
        writer.doFlush((error, result) -> { }).get();
        Map.Entry<ByteBuffer, ByteBuffer> entry = written.get(0).entrySet().iterator().next();
        print(name, bytes(entry.getKey()), bytes(entry.getValue()));
    }

    private static byte[] call(Object target, String method) throws Exception {
        Method m = target.getClass().getDeclaredMethod(method);
        m.setAccessible(true);
        return (byte[]) m.invoke(target);
    }

    private static byte[] bytes(ByteBuffer buffer) {
        ByteBuffer copy = buffer.duplicate();
        byte[] out = new byte[copy.remaining()];
        copy.get(out);
        return out;
    }

    private static void print(String name, byte[] key, byte[] value) {
        System.out.println(name + " " + HEX.formatHex(key) + " " + HEX.formatHex(value));
    }
}
